#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_restore
short_description: Restore a pg_backup backup into a database, safely
version_added: 0.1.0
description:
  - Restores a backup written by M(stackops.runbook.pg_backup) (the latest, a named one, a file or an S3 key)
    into a database, and proves it by comparing the restored per-table row counts with the manifest's.
  - The backup's sha256 is checked before the target is touched; a mismatch stops with no change made. The
    default backup (framed, see M(stackops.runbook.pg_backup)) is hashed while it restores into the scratch
    database, not before - its table of contents, which holds all of its SQL, is proven against the manifest
    before it runs, and the whole file before the restored copy can replace anything.
  - The backup is restored into a scratch database first; only when it restored and its row counts match does
    it replace the target. The target is renamed aside (C(TARGET__previous)), the restored copy takes its name,
    and only then is the old one dropped; a failed rename puts the old one back. A failed restore leaves the
    target as it was, and a leftover of an earlier run is never dropped while the target is missing.
  - Replacing an existing database needs O(confirm) set to its name, and refuses while other sessions are
    connected to it unless O(terminate_connections) is set.
  - With O(tables), restores only those tables (custom and directory archives) into the existing target.
requirements:
  - python zstandard (C(zstandard)) for zstd-compressed backups
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.postgres
  - stackops.runbook.container
  - stackops.runbook.docker
  - stackops.runbook.storage
  - stackops.runbook.backup_source
  - stackops.runbook.encryption.identity
  - stackops.runbook.restore
  - stackops.runbook._attributes.actiongroup_postgres_docker_storage
attributes:
  check_mode:
    support: full
    description: Finds and verifies the backup and reports what would be replaced; changes nothing.
  diff_mode:
    support: none
    description: Row count differences are returned instead.
options:
  database:
    description: Whose backups to pick C(latest) from. Default is O(target_database).
    type: str
  target_database:
    description: The database to restore into. Letters, digits, C(_), C(.) and C(-) only.
    type: str
    required: true
  confirm:
    description:
      - Must be the name of O(target_database) when that database exists. Nothing replaces a database without it.
    type: str
  terminate_connections:
    description: End the other sessions connected to O(target_database) before replacing it.
    type: bool
    default: false
  tables:
    description:
      - Restore only these tables (C(schema.table) or C(table), as the archive names them) from a custom or
        directory archive into the existing O(target_database). Their rows are replaced in one transaction
        without dropping anything, so tables that reference them (foreign keys) stay as they are; a restore
        that would leave a referencing row without its row fails and changes nothing. Needs a superuser.
    type: list
    elements: str
  restore_globals:
    description:
      - First restore the newest globals backup (M(stackops.runbook.pg_backup) with O(stackops.runbook.pg_backup#module:globals_only))
        of the same storage, so the roles that own and are granted the database's objects exist.
      - Only what is missing is added. Roles that exist - the connecting superuser among them - are neither created
        nor altered (their passwords stay), and tablespaces are left out. Roles added stay if the database restore
        then fails (they own nothing yet).
    type: bool
    default: false
  no_owner:
    description: Skip ownership and privileges (C(--no-owner --no-privileges)), for a server without the original roles.
    type: bool
    default: false
notes:
  - Replacing a database needs room for a second copy while the scratch database is restored.
seealso:
  - module: stackops.runbook.pg_backup
  - module: stackops.runbook.restore_drill
"""

EXAMPLES = r"""
- name: Replace the app database with last night's backup (the runbook's full restore)
  stackops.runbook.pg_restore:
    path: /var/backups/postgres
    target_database: app
    confirm: app
    terminate_connections: true

- name: Restore one table from a named backup
  stackops.runbook.pg_restore:
    path: /var/backups/postgres
    backup: app_20261122T030000Z
    target_database: app
    confirm: app
    tables: [public.users]

- name: Restore the latest offsite copy into a new database, inside the postgres container
  stackops.runbook.pg_restore:
    container: app-postgres-1
    s3:
      bucket: backups
      prefix: prod/postgres
    database: app
    target_database: app_restored
"""

RETURN = r"""
restored:
  description: Whether the backup was restored.
  returned: always
  type: bool
  sample: true
globals:
  description: With O(restore_globals), the globals backup used and the roles it created or found already there.
  returned: when restore_globals is set
  type: dict
  sample: {"backup": "globals_20261122T030000Z", "created_roles": ["app_user"], "skipped_roles": ["postgres"]}
row_counts_checked:
  description:
    - Whether the restored row counts were compared with the backup's manifest. A backup made by another tool
      (a runbook's C(pg_dump | gzip) file, given by path) has no row counts.
  returned: when a backup was found
  type: bool
  sample: true
backup:
  description: The backup that was restored (its manifest's name).
  returned: always
  type: str
  sample: app_20261122T030000Z
owner:
  description:
    - The owner of the restored database - the target's owner before the restore, else the owner recorded in the
      backup's manifest, when that role exists; else the connecting user.
  returned: when a whole database was restored
  type: str
  sample: app_owner
replaced:
  description: Whether an existing database was replaced.
  returned: always
  type: bool
  sample: true
duration:
  description: Seconds the whole task took.
  returned: always
  type: float
  sample: 42.1
jobs:
  description:
    - Parallel jobs the restore ran with; C(1) when it ran as one stream (plain SQL, O(jobs=1), or no room for a
      seekable copy of a custom archive without a frame layout, which a warning then says).
  returned: when a whole database was restored
  type: int
  sample: 2
restore_seconds:
  description: Seconds the restore itself took.
  returned: success and not check mode
  type: float
  sample: 35.4
row_counts:
  description: Rows per table in the restored database.
  returned: success and not check mode
  type: dict
  sample: {"public.users": 20000}
differences:
  description: Tables whose restored row counts differ from the manifest (expected, restored).
  returned: always
  type: dict
  sample: {}
sessions:
  description: Other sessions connected to the target when the task looked.
  returned: when the target exists
  type: list
  elements: dict
  sample: [{"pid": 4242, "user": "app", "application": "api", "client": "172.18.0.3", "state": "idle"}]
"""

import tempfile
import time

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._backups import (
    RestoreError,
    backup_source_argument_spec,
    checked_as_read,
    checked_copy,
    find_backup,
    open_storage,
    private_workdir,
)
from ansible_collections.stackops.runbook.plugins.module_utils._age import Identity
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._restore import (
    Admin,
    SeekableArchive,
    archive_names,
    archive_tables,
    compare_counts,
    missing_tables,
    reads_in_frames,
    restore_argument_spec,
    restore_globals,
    restore_into,
    restore_options_error,
    restore_tables,
)
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import (
    ClientContext,
    ident,
    postgres_common_argument_spec,
)

SCRATCH_SUFFIX = "__restoring"
PREVIOUS_SUFFIX = "__previous"  # the target, set aside until the restored copy has its name
TABLES_SUFFIX = "__tables"  # the backup's rows of the tables, on their way into the target


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(backup_source_argument_spec())
    spec.update(restore_argument_spec())
    spec.update(
        database=dict(type="str"),
        target_database=dict(type="str", required=True),
        confirm=dict(type="str"),
        terminate_connections=dict(type="bool", default=False),
        tables=dict(type="list", elements="str"),
        no_owner=dict(type="bool", default=False),
        restore_globals=dict(type="bool", default=False),
    )
    return spec


def validate(module):
    p = module.params
    for key in ("target_database", "database"):
        if p[key] is not None and (not mf.is_safe_name(p[key]) or len(p[key]) > 63 - len(SCRATCH_SUFFIX)):
            module.fail_json(msg="%s=%r cannot be used: letters, digits, '_', '.' and '-' only, without '..', at most %d characters"
                                 % (key, p[key], 63 - len(SCRATCH_SUFFIX)))
    problem = restore_options_error(p)
    if problem:
        module.fail_json(msg=problem)
    require_libraries(module, zstandard=True, docker=bool(p["container"]), boto3=bool(p["s3"]))


class Restore:
    def __init__(self, module, runner):
        self.module = module
        self.p = module.params
        self.runner = runner
        self.result = dict(changed=False, restored=False, replaced=False, differences={})

    def fail(self, msg):
        raise RestoreError(msg, self.result)

    def run(self, workdir):
        p = self.p
        self.workdir = workdir
        self.identity = Identity.from_params(p)
        target = p["target_database"]
        storage = open_storage(p)
        manifest = find_backup(storage, p["backup"], p["database"] or target)
        self.result["backup"] = manifest["name"]
        if manifest.get("kind") in ("all_databases", "globals"):
            self.fail("%s is a %s dump (pg_dumpall): it is not restored into one database, so nothing was changed. "
                      "Use restore_globals for roles; restore a whole cluster dump on an empty server with psql -f"
                      % (manifest["name"], "cluster" if manifest["kind"] == "all_databases" else "globals"))
        self.result["row_counts_checked"] = bool(manifest.get("row_counts"))
        if p["tables"] and manifest["format"] == "plain":
            self.fail("tables needs a custom or directory archive; %s is plain SQL (restore it whole, or into a new "
                      "database and copy the table)" % manifest["name"])
        self.admin = Admin(self.runner)  # one session for every database-level statement of the run
        try:
            return self._run_checked(storage, manifest, target, workdir)
        finally:
            self.admin.close()

    def _run_checked(self, storage, manifest, target, workdir):
        p = self.p
        self._refuse_unconfirmed(target, manifest)
        # a parallel restore of a custom archive runs on a seekable copy, filled while the backup is checked;
        # a framed one is read where it is, and checked while it is read
        in_frames = not p["tables"] and not self.module.check_mode and reads_in_frames(manifest, p["jobs"])
        self.seekable = SeekableArchive(self.runner, manifest, workdir) if (
            not p["tables"] and not self.module.check_mode and SeekableArchive.wanted(manifest, p["jobs"])) else None
        self.file_check = None
        try:
            if in_frames:
                local, manifest, self.file_check = checked_as_read(storage, manifest, workdir, self.runner,
                                                                   identity=self.identity)
            else:
                local, manifest = checked_copy(storage, manifest, workdir, self.runner, seekable=self.seekable,
                                               identity=self.identity)
            return self._restore_checked(local, manifest, target)
        finally:
            if self.seekable is not None:
                self.seekable.remove()
            if self.file_check is not None:
                self.file_check.cancel()

    def _refuse_unconfirmed(self, target, manifest):
        """An existing target without confirm is refused before the backup is read or copied."""
        if self.p["confirm"] == target:
            return
        if self.admin.exists(target):
            self._unconfirmed(target, manifest)

    def _unconfirmed(self, target, manifest):
        self.fail("%s exists; restoring %s %s it. Set confirm: %s to say so (nothing was changed)"
                  % (target, manifest["name"], "into it replaces tables of" if self.p["tables"] else "replaces", target))

    def _restore_checked(self, local, manifest, target):
        p = self.p
        if p["tables"]:
            in_archive = archive_tables(self.runner, local, manifest)
            missing = missing_tables(p["tables"], in_archive)
            if missing:
                self.fail("tables %s are not in %s (names match exactly, case included), so nothing was changed. "
                          "The archive has: %s" % (", ".join(missing), manifest["name"], ", ".join(in_archive)))
            self.tables = sorted({name for t in p["tables"] for name in archive_names(t, in_archive)})
        return self._restore(self.admin, local, manifest, target)

    def _restore(self, admin, local, manifest, target):
        p = self.p
        exists = admin.exists(target)
        if exists:
            self.result["sessions"] = admin.other_sessions(target)
            if p["confirm"] != target:
                self._unconfirmed(target, manifest)  # created meanwhile
            if self.result["sessions"] and not p["terminate_connections"]:
                self.fail("%d other session(s) are connected to %s (%s); stop the application first or set "
                          "terminate_connections: true (nothing was changed)" % (
                              len(self.result["sessions"]), target,
                              ", ".join("pid %(pid)s %(user)s/%(application)s" % s for s in self.result["sessions"])))
        elif p["tables"]:
            self.fail("tables restores into an existing database, and %s does not exist" % target)
        self.result.update(changed=True, replaced=exists and not p["tables"])
        if p["restore_globals"]:
            self._restore_globals()
        if self.module.check_mode:
            return self.result
        started = time.monotonic()
        if p["tables"]:
            self._restore_tables(admin, local, manifest, target)
            counts = admin.row_counts(target)
            expected = {t: n for t, n in (manifest.get("row_counts") or {}).items()
                        if t in p["tables"] or t.split(".", 1)[-1] in p["tables"]}
            counts = {t: n for t, n in counts.items() if t in expected}
        else:
            counts = self._restore_whole(admin, local, manifest, target, exists)
            expected = manifest.get("row_counts") or {}
        self.result.update(restored=True, restore_seconds=round(time.monotonic() - started, 3), row_counts=counts,
                           differences=compare_counts(expected, counts) if expected else {})
        return self.result

    def _restore_globals(self):
        """The newest globals backup of the storage, checked, then what it adds (roles) before the database."""
        storage = open_storage(self.p)
        manifest = find_backup(storage, "latest", "globals", kind="globals")
        local, manifest = checked_copy(storage, manifest, tempfile.mkdtemp(dir=self.workdir), self.runner,
                                       "the globals backup", identity=self.identity)
        report = dict(backup=manifest["name"])
        self.result["globals"] = report
        if not self.module.check_mode:
            restore_globals(self.runner, local, manifest, report)

    def _restore_tables(self, admin, local, manifest, target):
        """The tables' rows replaced in one transaction of the target (see _restore.restore_tables): their
        dependents are neither dropped nor cascaded to, and a restore that would break a foreign key changes
        nothing."""
        scratch = target + TABLES_SUFFIX
        admin.drop(scratch)  # a leftover of a run that died: only ever a copy of backup rows
        admin.create(scratch)
        try:
            restore_tables(self.runner, local, manifest, target, self.tables, scratch)
        except CommandError as exc:
            raise RestoreError("the tables were not restored and %s was not changed: %s" % (
                target, _first_line(exc).replace("stackops: ", "")))
        finally:
            _drop_quietly(self.runner, scratch)

    def _restore_whole(self, admin, local, manifest, target, exists):
        """Restore into a scratch database; only a restore whose counts match replaces the target, and the
        target is dropped only once the restored copy carries its name."""
        scratch = target + SCRATCH_SUFFIX
        self._clear_leftovers(admin, target, exists)
        # the runbooks restore with the database's owner: the one it has now, else the one it had when backed up
        owner = admin.owner(target) if exists else manifest.get("database_owner")
        owner = owner if owner and admin.role_exists(owner) else None
        admin.create(scratch, owner)
        self.result["owner"] = owner or self.p["login_user"]
        try:
            how = restore_into(self.runner, local, manifest, scratch, self.p["jobs"], self.p["no_owner"],
                               workdir=self.workdir, seekable=self.seekable, check=self.file_check)
            self.result["jobs"] = how["jobs"]
            if how.get("warning"):
                self.module.warn(how["warning"])
            counts = how.get("row_counts")
            if counts is None:
                counts = admin.row_counts(scratch)
            differences = compare_counts(manifest.get("row_counts") or {}, counts) if manifest.get(
                "row_counts") else {}
            if differences:
                self.result["differences"] = differences
                raise RestoreError("the restored row counts differ from the manifest (%s); %s was not touched"
                                   % (", ".join("%s: %s expected, %s restored" % (t, d["expected"], d["restored"])
                                                for t, d in differences.items()), target))
        except BaseException:
            _drop_quietly(self.runner, scratch)  # the target was not touched: the scratch copy is all there is
            raise
        self._swap(admin, scratch, target, exists)
        return counts

    def _clear_leftovers(self, admin, target, exists):
        """Drop what an earlier run left, but never a copy that may be the only one of the data."""
        for leftover in (target + SCRATCH_SUFFIX, target + PREVIOUS_SUFFIX):
            if not admin.exists(leftover):
                continue
            if not exists:
                raise RestoreError(
                    "%s does not exist but %s, left by an earlier run, does: it may hold the only copy of the data, "
                    "so nothing was changed. Look at it, then rename it back (ALTER DATABASE %s RENAME TO %s) or "
                    "drop it, and run again" % (target, leftover, ident(leftover), ident(target)))
            admin.terminate(leftover)
            admin.drop(leftover)

    def _swap(self, admin, scratch, target, exists):
        """scratch -> target. With an existing target: target -> TARGET__previous, scratch -> target, and only
        then drop the previous one; a failed rename puts the previous one back."""
        # nobody but us has business in the scratch database: closed to new sessions (a reconnecting client would
        # block the rename) until it carries the target's name
        admin.allow_connections(scratch, False)
        admin.terminate(scratch)
        if not exists:
            admin.rename(scratch, target)
            admin.allow_connections(target, True)
            return
        previous = target + PREVIOUS_SUFFIX
        if self.p["terminate_connections"]:
            admin.terminate(target)
        elif admin.other_sessions(target):
            _drop_quietly(self.runner, scratch)
            raise RestoreError("sessions connected to %s while it was being restored; it was not touched. "
                               "Stop the application or set terminate_connections: true" % target)
        try:
            admin.rename(target, previous)
        except RunbookError as exc:
            _drop_quietly(self.runner, scratch)
            raise RestoreError("%s could not be set aside (%s); it was not touched. Stop what connects to it, or "
                               "set terminate_connections: true" % (target, _first_line(exc)))
        try:
            admin.terminate(scratch)
            admin.rename(scratch, target)
            admin.allow_connections(target, True)
        except RunbookError as exc:
            undo = Admin(self.runner)  # psql stops at the first error: a new session for the way back
            try:
                undo.terminate(previous)
                undo.rename(previous, target)
            except RunbookError as undo_exc:
                raise RestoreError(
                    "the restored copy could not take the name %s (%s) and putting the old database back failed "
                    "too (%s). NOTHING WAS DROPPED: the old data is in %s, the restored copy in %s; rename one of "
                    "them to %s by hand" % (target, _first_line(exc), _first_line(undo_exc), previous, scratch,
                                            target))
            finally:
                undo.close()
            _drop_quietly(self.runner, scratch)
            raise RestoreError("the restored copy could not take the name %s (%s); the old database was put back "
                               "as it was. Stop what connects to %s and run again" % (target, _first_line(exc),
                                                                                      scratch))
        _drop_quietly(self.runner, previous)  # the restored copy is in place: the old one may go


def _first_line(exc):
    """The line of a client's error output that says what went wrong (psql's ERROR line, not its CONTEXT)."""
    lines = str(getattr(exc, "stderr", "") or exc).strip().splitlines()
    errors = [line.split("ERROR:", 1)[1].strip() for line in lines if "ERROR:" in line]
    return errors[0] if errors else (lines[-1] if lines else type(exc).__name__)


def _drop_quietly(runner, database):
    """Drop ``database`` on a session of its own (the one that failed may be gone); a failure leaves it for the
    next run, which drops it first."""
    admin = Admin(runner)
    try:
        admin.terminate(database)
        admin.drop(database)
    except RunbookError:
        pass
    finally:
        admin.close()


def main():
    module = RunbookModule(argument_spec=argument_spec(), mutually_exclusive=[("path", "s3")],
                           supports_check_mode=True)
    validate(module)
    try:
        with private_workdir("stackops-restore-") as workdir:
            with ClientContext(module.params) as runner:
                result = Restore(module, runner).run(workdir)
    except RunbookError as exc:
        module.fail_from(exc, "restore into %s failed" % module.params["target_database"])
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
