# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice."""

from __future__ import annotations

import datetime
import importlib
import sys
import time

from ansible.module_utils.basic import AnsibleModule


class RunbookModule(AnsibleModule):
    """AnsibleModule with the collection's one way to fail (``fail_from``) and to finish (``finished``),
    both carrying the run's duration.

    Its results keep their own ``size``, ``mode`` and ``state``: exit_json() normally treats a ``path``
    key as a file to describe and overwrites ``size`` with the stat of that path, which for a directory
    backup is 4096, not the backup's size.
    """

    def __init__(self, *args, **kwargs):
        self.started = time.monotonic()
        super().__init__(*args, **kwargs)

    def add_path_info(self, kwargs):
        return kwargs

    def duration(self):
        """Seconds since the module started."""
        return round(time.monotonic() - self.started, 3)

    def fail_from(self, exc, what=None, kept=None, **extra):
        """Fail with a RunbookError: ``what`` failed, the error's message, the sentence saying what was kept
        (the error's own ``kept`` when it has one, else ``kept``), its partial result (over ``extra``) and
        the duration."""
        msg = str(exc)
        if what:
            msg = "%s: %s" % (what, msg)
        sentence = getattr(exc, "kept", None) or kept
        if sentence:
            msg = "%s. %s" % (msg.rstrip(". "), sentence)
        result = dict(extra, **(getattr(exc, "result", None) or {}))
        result.setdefault("duration", self.duration())
        self.fail_json(msg=msg, **result)

    def seconds(self, name):
        """The duration parameter ``name`` in seconds (None when unset); fails naming it when it is not one."""
        value = self.params[name]
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            return self.fail_json(msg="%s: %s" % (name, exc))

    def time(self, name, example):
        """The ISO 8601 time parameter ``name`` (None when unset); fails naming it, with ``example``, when it
        is not one."""
        value = self.params[name]
        if value is None:
            return None
        try:
            return parse_time(value)
        except ValueError:
            return self.fail_json(msg="%s=%r is not an ISO 8601 time%s" % (name, value, example))

    def finished(self, result):
        """``result`` with the duration, after a warning per backup dated in the future."""
        self.warn_future_backups(result.get("future_backups"))
        if result.get("retention_held"):
            self.warn(result["retention_held"])
        result["duration"] = self.duration()
        return result

    def warn_future_backups(self, backups):
        """One warning per backup dated in the future (the dicts of _storage.future_dated)."""
        for item in backups or []:
            self.warn("%s at %s is %s" % (item["name"], item["location"], item["reason"]))


# import name: (what it is for, pip name, Debian/Ubuntu package)
LIBRARIES = {
    "zstandard": ("zstd compression", "zstandard", "python3-zstandard"),
    "docker": ("the docker engine", "docker", "python3-docker"),
    "boto3": ("S3", "boto3", "python3-boto3"),
    "jmespath": ("json checks", "jmespath", "python3-jmespath"),
    "yaml": ("compose files", "PyYAML", "python3-yaml"),
}


def missing_libraries(**needed):
    """The import names of the libraries this run needs (``docker=True``...) that this Python lacks."""
    missing = []
    for name, wanted in needed.items():
        if not wanted:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def missing_libraries_message(missing, where):
    """One sentence naming every missing library with its pip and Debian/Ubuntu package, and the fix."""
    return ("missing Python libraries on %s: %s. Run the stackops.runbook.prerequisites role (ansible-playbook "
            "stackops.runbook.prerequisites), or install them yourself: apt-get install %s, or pip install %s" % (
                where, ", ".join("%s (for %s; pip %s, Debian/Ubuntu %s)" % ((name,) + LIBRARIES[name])
                                 for name in missing),
                " ".join(LIBRARIES[name][2] for name in missing), " ".join(LIBRARIES[name][1] for name in missing)))


def require_libraries(module, **needed):
    """Fail once, naming every library this run needs (``docker=True``...) and lacks, before anything is done."""
    # Imported here, and only when wanted: docker and boto3 take 0.25 s together, which a health check
    # or a backup on the host should not pay. module_utils import them again (cached) where they use them.
    missing = missing_libraries(**needed)
    if missing:
        module.fail_json(msg=missing_libraries_message(missing, "this host's Python %s" % sys.executable),
                         missing_libraries=missing)


def parse_time(text):
    """An aware datetime from ISO 8601 ``text`` (a trailing Z, or no zone at all, is UTC); ValueError otherwise."""
    when = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)


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
