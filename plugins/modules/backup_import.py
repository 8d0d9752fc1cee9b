#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_import
short_description: Adopt a dump the runbooks' cron jobs made, so retention, restores and drills treat it as a backup
version_added: 0.2.0
description:
  - Users who switch to the collection have months of C(pg_dump | gzip > app.sql.gz), C(pg_dump -Fc > app.dump)
    and C(pg_dumpall > cluster.sql) files. This module copies one into a backup directory under the collection's
    naming (C(LABEL_YYYYMMDDTHHMMSSZ)) with a manifest, so M(stackops.runbook.backup_info), retention,
    M(stackops.runbook.pg_restore) and M(stackops.runbook.restore_drill) work with it like with the backups
    M(stackops.runbook.pg_backup) makes.
  - The file is recognised by its content (gzip or zstd or none; a custom archive or plain SQL; one database or a
    whole cluster), fully decompressed and checked (the dump's completion line, or C(pg_restore --list) where the
    host has it) before anything is written. Its time is the file's modification time unless O(taken_at) says.
  - The manifest says the backup was made by another tool and has no row counts, so drills grade it by what it
    holds and against the live source.
  - Importing the same file again changes nothing (the manifest records its sha256).
author:
  - stackops.runbook contributors (@stackops)
attributes:
  check_mode:
    support: full
    description: Recognises and checks the file and says what would be written.
  diff_mode:
    support: none
    description: A new backup has no meaningful diff.
options:
  src:
    description: The dump file to adopt (on the managed host).
    type: path
    required: true
  dest:
    description: The backup directory (the O(stackops.runbook.pg_backup#module:dest) of pg_backup).
    type: path
    required: true
  database:
    description:
      - The database the dump is of (its backups' label). Default for a cluster dump is C(all_databases); a dump of
        one database needs it.
    type: str
  taken_at:
    description: When the dump was taken (ISO 8601 in UTC, such as C(2026-11-21T03:00:00Z)); default the file's time.
    type: str
  lock_timeout:
    description: Seconds to wait for another run that holds the destination's lock.
    type: int
    default: 0
requirements:
  - python zstandard (for zstd-compressed dumps)
"""

EXAMPLES = r"""
- name: Adopt the nightly dumps the old cron job left
  stackops.runbook.backup_import:
    src: "{{ item.path }}"
    dest: /var/backups/postgres
    database: myapp
  loop: "{{ old_dumps.files }}"
"""

RETURN = r"""
path:
  description: The backup's file under the collection's naming.
  returned: always
  type: str
  sample: /var/backups/postgres/myapp_20261121T030000Z.sql.gz
manifest_path:
  description: Its manifest.
  returned: always
  type: str
  sample: /var/backups/postgres/myapp_20261121T030000Z.manifest.json
manifest:
  description: The manifest written (or that would be, in check mode).
  returned: always
  type: dict
  sample: {"name": "myapp_20261121T030000Z", "format": "plain", "compression": "gzip", "row_counts": null}
"""

import datetime
import os

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._dump import DumpError, verify_backup
from ansible_collections.stackops.runbook.plugins.module_utils._imported import describe_file
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, parse_time, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._runner import LocalRunner
from ansible_collections.stackops.runbook.plugins.module_utils._storage import HashingFile, LocalStorage


class ImportFailed(RunbookError):
    """The file cannot be adopted; the message says why and what was kept."""


def already_imported(local, label, sha256):
    for entry in local.list_backups(label):
        if (entry.manifest.get("imported_from") or {}).get("sha256") == sha256:
            return entry
    return None


def adopt(module, local, found, label, when):
    """Copy the file in under the collection's naming, then its manifest (under the destination's lock)."""
    p = module.params
    name = mf.backup_name(label, when)
    file_name = mf.data_file_name(name, found["format"], found["compression"])
    manifest = dict(found, tool=mf.TOOL, name=name, file=file_name, started_at=mf.isoformat(when),
                    finished_at=mf.isoformat(when), verified=True, row_counts_mode="none",
                    source=dict(mode="imported", made_by="another tool"),
                    imported_from=dict(path=p["src"], sha256=found["sha256"], made_by="another tool"))
    manifest["database"] = label if found["kind"] == "database" else None
    if module.check_mode:
        return manifest
    local.ensure()
    with local.lock(p["lock_timeout"]):
        if already_imported(local, label, found["sha256"]) or os.path.exists(local.path(file_name)):
            raise ImportFailed("%s already holds a backup of %s taken at %s: nothing was written"
                               % (p["dest"], label, mf.isoformat(when)))
        partial = HashingFile(local.path(file_name + mf.PARTIAL_SUFFIX))
        try:
            with open(p["src"], "rb") as fh:
                for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                    partial.write(chunk)
            partial.close()
        except BaseException:
            partial.discard()
            raise
        if partial.sha256.hexdigest() != found["sha256"]:
            partial.discard()
            raise ImportFailed("%s changed while it was copied: nothing was kept" % p["src"])
        local.publish(partial.path, manifest)
    return manifest


def verify_import(src, found):
    """The file read through as its manifest-to-be describes it (pg_restore --list too, when at hand)."""
    runner = LocalRunner()
    try:
        return verify_backup(LocalStorage(os.path.dirname(src)), found,
                             runner if runner.has_program("pg_restore") else None)
    except DumpError as exc:
        raise ImportFailed("the file does not check out, so nothing was written: %s" % exc)


def main():
    module = RunbookModule(argument_spec=dict(
        src=dict(type="path", required=True), dest=dict(type="path", required=True), database=dict(type="str"),
        taken_at=dict(type="str"), lock_timeout=dict(type="int", default=0)), supports_check_mode=True)
    p = module.params
    taken_at = module.time("taken_at", " such as 2026-11-21T03:00:00Z")
    try:
        if p["database"] is not None and not mf.is_safe_name(p["database"]):
            raise ImportFailed("database=%r cannot be used: letters, digits, '_', '.' and '-' only, without '..'"
                               % p["database"])
        found = describe_file(p["src"], p["database"])
        label = p["database"] or ("all_databases" if found["kind"] == "all_databases" else None)
        if label is None:
            raise ImportFailed("%s is a dump of one database: say which with database" % p["src"])
        require_libraries(module, zstandard=found["compression"] == "zstd")
        when = (taken_at or parse_time(found["finished_at"])).astimezone(datetime.timezone.utc)
        local = LocalStorage(p["dest"])
        existing = already_imported(local, label, found["sha256"])
        if existing:
            module.exit_json(changed=False, path=existing.location, manifest=existing.manifest,
                             manifest_path=local.path(mf.manifest_file_name(existing.name)),
                             msg="%s was imported before as %s" % (p["src"], existing.name))
        found["verification"] = verify_import(p["src"], found)
        manifest = adopt(module, local, found, label, when)
    except RunbookError as exc:
        module.fail_from(exc, "import of %s failed" % p["src"])
    module.exit_json(**module.finished(dict(changed=True, path=local.path(manifest["file"]), manifest=manifest,
                                            manifest_path=local.path(mf.manifest_file_name(manifest["name"])))))


if __name__ == "__main__":
    main()
