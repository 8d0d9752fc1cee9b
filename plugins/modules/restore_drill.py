#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restore_drill
short_description: Prove a backup restores, in a throwaway PostgreSQL, and write the drill log
version_added: 0.1.0
description:
  - The runbooks' quarterly restore drill as a task. It picks the latest backup (or a given one), checks its
    sha256, restores it into a throwaway target and grades it.
  - The target is a new container from O(drill_image) on a network of its own, or else a uniquely named
    scratch database on the server the connection options name (never the source database).
  - Grades the restore by table count, per-table row counts against the manifest, O(critical_tables) minimums,
    O(spot_checks), an optional comparison with the live source (O(compare_source)) and the restore time
    against O(rto_seconds).
  - Always removes the throwaway target, also when a step fails; leftovers of interrupted drills are recognised
    by their label and removed by the next drill.
  - Writes the drill log in the runbooks' template (markdown) and as JSON into O(log_dir), and appends to the
    drill history there.
requirements:
  - python zstandard (C(zstandard)) for zstd-compressed backups
  - The Python docker SDK (C(docker)) with O(drill_image)
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
    description: Finds the backup and reports what the drill would do; starts nothing.
  diff_mode:
    support: none
    description: A drill has no before and after.
options:
  database:
    description: The database whose backups are drilled.
    type: str
    required: true
  drill_image:
    description:
      - A PostgreSQL image to start the throwaway target from, such as C(postgres:16). It is started through the
        official image's interface (C(POSTGRES_PASSWORD), port 5432).
      - C({major}) in it stands for the major version of the server the backup was taken from (its manifest's
        C(server_version)), as in C(postgres:{major}), so a backup is drilled on the PostgreSQL it came from.
      - Without it, the connection options name a server on which a scratch database is created and dropped.
    type: str
  drill_port:
    description: Publish the throwaway container's port 5432 on this loopback port (for looking at it during the drill).
    type: int
  critical_tables:
    description: Tables (keys) that must hold at least this many rows (values), such as C(public.users) with C(1000).
    type: dict
  spot_checks:
    description: SQL queries that must each return at least one row in the restored database.
    type: list
    elements: str
  compare_source:
    description:
      - The live source database, to compare the restored row counts with. A table with fewer rows there than
        in the backup (rows deleted since) fails the drill.
    type: dict
    suboptions:
      database:
        description: The source database.
        type: str
        required: true
      login_host:
        description: Host of the source server; leave it out for the Unix socket.
        type: str
      login_port:
        description: Port of the source server.
        type: int
        default: 5432
      login_user:
        description: Role to connect as.
        type: str
        default: postgres
      login_password:
        description: Password of O(compare_source.login_user).
        type: str
      login_unix_socket:
        description: Directory of the source server's Unix socket.
        type: str
      ssl_mode:
        description: libpq's C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificates to check the server's certificate against.
        type: path
      container:
        description: Run the client inside this container (the source's postgres container).
        type: str
      container_user:
        description: User inside O(compare_source.container).
        type: str
      docker_host:
        description: The docker daemon of O(compare_source.container).
        type: str
      bin_dir:
        description: Directory of the PostgreSQL client programs on the host.
        type: path
  rto_seconds:
    description: The recovery time objective in seconds; a restore slower than this fails the drill.
    type: float
  log_dir:
    description: Directory of the drill logs (markdown and JSON) and of C(history.jsonl).
    type: path
    required: true
  performed_by:
    description: Who ran the drill, for the log's C(Performed by) line (the AWX user, a person's name).
    type: str
  restore_globals:
    description:
      - Restore the newest globals backup (roles, memberships) of the same storage into the throwaway container
        first, then the database with its owners and grants, so that they are graded too. Needs O(drill_image).
    type: bool
    default: false
  fail_on_drill_failure:
    description: Fail the task when the drill fails. With C(false) the result says so and the task succeeds.
    type: bool
    default: true
seealso:
  - module: stackops.runbook.pg_backup
  - module: stackops.runbook.pg_restore
"""

EXAMPLES = r"""
- name: Quarterly restore drill of the latest backup in a throwaway container
  stackops.runbook.restore_drill:
    path: /var/backups/postgres
    database: app
    drill_image: postgres:16
    critical_tables:
      public.users: 1000
    spot_checks:
      - SELECT 1 FROM users WHERE email LIKE '%@example.com' LIMIT 1
    rto_seconds: 900
    log_dir: /var/log/stackops/drills

- name: Drill the offsite copy into a scratch database on the staging server
  stackops.runbook.restore_drill:
    s3:
      bucket: backups
      prefix: prod/postgres
    database: app
    login_host: staging-db.internal
    login_user: drill
    login_password: "{{ vault_drill_password }}"
    log_dir: /var/log/stackops/drills
"""

RETURN = r"""
passed:
  description: Whether the drill passed.
  returned: always
  type: bool
  sample: true
failures:
  description: What failed, each with its kind (corrupt, empty, restore_error, missing_tables, row_counts, critical_table, spot_check, source_drift, rto).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "rto", "message": "the restore took 1020.4s, over the RTO of 900s"}]
duration:
  description: Seconds the whole drill took.
  returned: always
  type: float
  sample: 61.2
restore_seconds:
  description: Seconds the restore itself took (what the RTO is measured against).
  returned: always
  type: float
  sample: 42.7
jobs:
  description: Parallel jobs the restore ran with (C(1) for one stream); null when it did not get to restore.
  returned: always
  type: int
  sample: 2
tables:
  description: Tables restored.
  returned: always
  type: int
  sample: 6
rows:
  description: Rows restored, all tables together.
  returned: always
  type: int
  sample: 135500
backup:
  description: The backup drilled.
  returned: always
  type: str
  sample: app_20261122T030000Z
target:
  description: Where it was restored (container image or scratch database).
  returned: always
  type: str
  sample: container from postgres:16
log_path:
  description: The markdown drill log.
  returned: when not check mode
  type: str
  sample: /var/log/stackops/drills/drill_app_20261122T040000Z.md
json_log_path:
  description: The same log as JSON.
  returned: when not check mode
  type: str
  sample: /var/log/stackops/drills/drill_app_20261122T040000Z.json
"""

import datetime
import os
import signal
import tempfile
import time

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._drill import (
    CORRECTIVE_ACTIONS,
    ContainerTarget,
    ScratchDatabaseTarget,
    grade,
    image_for_backup,
    write_logs,
)
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._backups import (
    DamagedBackup,
    backup_source_argument_spec,
    checked_copy,
    find_backup,
    open_storage,
    private_workdir,
)
from ansible_collections.stackops.runbook.plugins.module_utils._age import Identity
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._restore import (
    SeekableArchive,
    reads_in_frames,
    restore_argument_spec,
    restore_globals,
    restore_into,
    restore_options_error,
    row_counts,
)
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import (
    ClientContext,
    postgres_common_argument_spec,
)


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(backup_source_argument_spec())
    spec.update(restore_argument_spec())
    spec.update(
        database=dict(type="str", required=True),
        drill_image=dict(type="str"),
        drill_port=dict(type="int"),
        critical_tables=dict(type="dict"),
        spot_checks=dict(type="list", elements="str"),
        compare_source=dict(type="dict", options=dict(postgres_common_argument_spec(),
                                                      database=dict(type="str", required=True))),
        rto_seconds=dict(type="float"),
        log_dir=dict(type="path", required=True),
        performed_by=dict(type="str"),
        restore_globals=dict(type="bool", default=False),
        fail_on_drill_failure=dict(type="bool", default=True),
    )
    return spec


def validate(module):
    p = module.params
    if not mf.is_safe_name(p["database"]):
        module.fail_json(msg="database=%r is not a name pg_backup uses: letters, digits, '_', '.' and '-' only, without '..'"
                             % p["database"])
    problem = restore_options_error(p)
    if problem:
        module.fail_json(msg=problem)
    if p["drill_port"] is not None and p["drill_port"] < 1:
        module.fail_json(msg="drill_port=%s must be 1 or more" % p["drill_port"])
    if p["rto_seconds"] is not None and p["rto_seconds"] <= 0:
        module.fail_json(msg="rto_seconds=%s must be above 0" % p["rto_seconds"])
    for table, minimum in (p["critical_tables"] or {}).items():
        if not isinstance(minimum, int) or minimum < 0:
            module.fail_json(msg="critical_tables: %s needs a whole number of rows (0 or more), got %r"
                                 % (table, minimum))
    if p["drill_port"] and not p["drill_image"]:
        module.fail_json(msg="drill_port needs drill_image (it publishes the throwaway container's port)")
    if p["restore_globals"] and not p["drill_image"]:
        module.fail_json(msg="restore_globals needs drill_image: roles are server-wide, and a scratch database's server "
                             "is not throwaway")
    require_libraries(module, zstandard=True, docker=bool(p["drill_image"] or p["container"]),
                      boto3=bool(p["s3"]))


def _interrupted(signum, _frame):
    # turn a termination into an exception, so that the throwaway target is still removed
    raise KeyboardInterrupt("drill interrupted by signal %d" % signum)


def source_counts(options):
    """Row counts of the live source, now."""
    with ClientContext({k: v for k, v in options.items() if k != "database"}) as runner:
        return row_counts(runner, options["database"])


def globals_backup(storage, workdir, identity):
    """(storage, manifest) of the newest globals backup beside the drilled one, staged and checked."""
    manifest = find_backup(storage, "latest", "globals", kind="globals")
    return checked_copy(storage, manifest, tempfile.mkdtemp(dir=workdir), what="the globals backup",
                        identity=identity)


def damage_kind(manifest, copy):
    """``empty`` when the backup's file holds no bytes though its manifest says it has some, else ``corrupt``."""
    if manifest["format"] == "directory" or not manifest.get("size"):
        return "corrupt"
    return "empty" if os.path.isfile(copy) and os.path.getsize(copy) == 0 else "corrupt"


def run_drill(module, report):
    """Restore and grade; fills ``report``. Raises only for setup problems (bad image, port in use)."""
    p = module.params
    identity = Identity.from_params(p)
    storage = open_storage(p)
    manifest = find_backup(storage, p["backup"], p["database"])
    report.update(backup=manifest["name"], manifest=manifest, location=storage.location(manifest["file"]))
    with private_workdir("stackops-drill-") as workdir:
        _restore_and_grade(module, report, storage, manifest, identity, workdir)


def _restore_and_grade(module, report, storage, manifest, identity, workdir):
    p = module.params
    target = seekable = None
    try:
        if not module.check_mode:
            if p["drill_image"]:
                image = image_for_backup(p["drill_image"], manifest)
                report["image"] = image
                target = ContainerTarget(image, p["drill_port"], p["docker_host"])
            else:
                target = ScratchDatabaseTarget(p, manifest.get("database"))
            # the backup is checked - and copied where pg_restore runs, for a parallel restore - while the
            # throwaway server initialises
            runner = target.launch()
            if SeekableArchive.wanted(manifest, p["jobs"]):
                seekable = SeekableArchive(runner, manifest, workdir)
        try:
            local, manifest = checked_copy(storage, manifest, workdir, seekable=seekable, identity=identity,
                                           whole=module.check_mode or not reads_in_frames(manifest, p["jobs"]))
        except DamagedBackup as exc:
            report["failures"].append(dict(kind=damage_kind(manifest, exc.copy), message=str(exc.cause)))
            return
        if module.check_mode:
            return
        report["target"] = target.describe()
        database = target.ready()
        started = time.monotonic()
        try:
            if p["restore_globals"]:
                roles, roles_manifest = globals_backup(storage, workdir, identity)
                report["globals"] = restore_globals(runner, roles, roles_manifest, dict(backup=roles_manifest["name"]))
            # with the roles in place the owners and grants are restored too, and so graded
            how = restore_into(runner, local, manifest, database, p["jobs"], no_owner=not p["restore_globals"],
                               workdir=workdir, seekable=seekable)
            report["jobs"] = how["jobs"]
            if how.get("warning"):
                module.warn(how["warning"])
        except CommandError as exc:
            report["restore_seconds"] = round(time.monotonic() - started, 3)
            report["failures"].append(dict(kind="restore_error", message=str(exc)))
            return
        report["restore_seconds"] = round(time.monotonic() - started, 3)
        compare = source_counts(p["compare_source"]) if p["compare_source"] else None
        report["failures"] += grade(runner, database, manifest, report, p["critical_tables"], p["spot_checks"],
                                    compare, p["rto_seconds"], how.get("row_counts"))
    finally:
        if seekable is not None:
            seekable.remove()
        if target is not None:
            target.remove()


def main():
    module = RunbookModule(argument_spec=argument_spec(), mutually_exclusive=[("path", "s3")],
                           supports_check_mode=True)
    validate(module)
    signal.signal(signal.SIGTERM, _interrupted)
    now = datetime.datetime.now(datetime.timezone.utc)
    report = dict(started_at=mf.isoformat(now), database=module.params["database"], failures=[],
                  performed_by=module.params["performed_by"],
                  restore_seconds=None, tables=0, rows=0, target=None, rto_seconds=module.params["rto_seconds"])
    try:
        run_drill(module, report)
    except RunbookError as exc:
        module.fail_from(exc, "the drill could not run")
    report["duration"] = module.duration()
    report["passed"] = not report["failures"]
    for failure in report["failures"]:
        failure.setdefault("corrective_action", CORRECTIVE_ACTIONS.get(failure["kind"], ""))
    result = dict(changed=not module.check_mode, passed=report["passed"], failures=report["failures"],
                  duration=report["duration"], restore_seconds=report["restore_seconds"], tables=report["tables"],
                  rows=report["rows"], backup=report.get("backup"), target=report["target"], jobs=report.get("jobs"))
    if not module.check_mode:
        result["log_path"], result["json_log_path"] = write_logs(module.params["log_dir"], report, now)
    if not report["passed"] and module.params["fail_on_drill_failure"] and not module.check_mode:
        module.fail_json(msg="restore drill of %s failed: %s" % (
            report.get("backup"), "; ".join("%s: %s" % (f["kind"], f["message"]) for f in report["failures"])),
            **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
