# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

The one base of the collection's errors: every error a module_utils raises on purpose is a RunbookError, whose
message says what happened (and what was kept, and what to do), and whose ``result`` holds what a failing
module returns beside it (a partial result: the backup that was kept, the last health round)."""

from __future__ import annotations


class RunbookError(Exception):
    """An operation failed in a way its message explains; ``result`` is returned with the failure."""

    def __init__(self, message="", result=None):
        super().__init__(message)
        self.result = dict(result or {})
