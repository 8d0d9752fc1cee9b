# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice."""

from __future__ import annotations

import importlib
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib


class RunbookModule(AnsibleModule):
    """AnsibleModule whose results keep their own ``size``, ``mode`` and ``state``.

    exit_json() normally treats a ``path`` key as a file to describe and overwrites ``size`` with the
    stat of that path, which for a directory backup is 4096, not the backup's size.
    """

    def add_path_info(self, kwargs):
        return kwargs


def require_libraries(module, **needed):
    """Fail, naming the package to install, for each library this run needs (``docker=True``...) and lacks."""
    # Imported here, and only when wanted: docker and boto3 take 0.25 s together, which a health check
    # or a backup on the host should not pay. module_utils import them again (cached) where they use them.
    for name, wanted in needed.items():
        if not wanted:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            module.fail_json(msg=missing_required_lib(name), exception=traceback.format_exc())


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value):
    """Seconds from ``90``, ``"90s"``, ``"30m"``, ``"26h"``, ``"7d"`` or ``"1w"``; ValueError otherwise."""
    text = str(value).strip().lower()
    if text.isdigit():
        return int(text)
    number, unit = text[:-1], text[-1:]
    if unit not in DURATION_UNITS or not number.replace(".", "", 1).isdigit():
        raise ValueError("%r is not a duration: use seconds or a number with s, m, h, d or w, such as 26h" % value)
    return int(float(number) * DURATION_UNITS[unit])
