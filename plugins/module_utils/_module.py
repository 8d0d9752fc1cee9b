# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


class RunbookModule(AnsibleModule):
    """AnsibleModule whose results keep their own ``size``, ``mode`` and ``state``.

    exit_json() normally treats a ``path`` key as a file to describe and overwrites ``size`` with the
    stat of that path, which for a directory backup is 4096, not the backup's size.
    """

    def add_path_info(self, kwargs):
        return kwargs
