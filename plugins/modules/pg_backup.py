#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_backup
short_description: Back up a PostgreSQL database safely, verified, with retention and an offsite copy
version_added: 0.1.0
description:
  - Takes one backup of one database (or of all databases, or of the global objects such as roles) with
    C(pg_dump) on the managed host or inside a running container, and streams it through compression and a
    sha256 into C(NAME.partial), which gets its final name only once it is complete, on disk and verified.
  - Writes a JSON manifest beside every backup (database, versions, format, compression, size, sha256,
    timing, per-table row counts taken in the dump's own snapshot).
  - Applies retention (O(keep_days), O(keep_last), O(keep_daily), O(keep_weekly), O(keep_monthly)) to the backups it made itself, and copies the backup
    with its manifest to S3-compatible storage, with retention there too.
  - A lock per destination keeps two runs from interleaving.
requirements:
  - python zstandard (C(zstandard)) for zstd compression (the default of single-file formats)
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.retention
  - stackops.runbook.encryption
  - stackops.runbook.anomaly
  - stackops.runbook.postgres
  - stackops.runbook.container
  - stackops.runbook.docker
  - stackops.runbook.storage
  - stackops.runbook._attributes.actiongroup_postgres_docker_storage
attributes:
  check_mode:
    support: full
    description: Reports the path the backup would get and what retention would remove; writes nothing.
  diff_mode:
    support: none
    description: A backup has no before and after to compare.
options:
  database:
    description:
      - The database to back up. Also the first part of the backup's file name, so it is limited to letters,
        digits, C(_), C(.) and C(-).
      - Exactly one of O(database), O(all_databases) and O(globals_only) is required.
    type: str
  all_databases:
    description: Back up every database of the server with C(pg_dumpall) (plain format), labelled C(all_databases).
    type: bool
    default: false
  globals_only:
    description: Back up only the global objects (roles, tablespaces) with C(pg_dumpall --globals-only), labelled C(globals).
    type: bool
    default: false
  dest:
    description:
      - Directory of the backups on the managed host; created with mode 0700 when missing. Backup files are 0600.
    type: path
    required: true
  format:
    description:
      - C(custom) is a single archive that C(pg_restore) reads, table by table if need be. Compressed with zstd
        (or not at all) it is cut into frames where its tables' data starts, and the manifest's C(layout) says
        where, so M(stackops.runbook.pg_restore) and M(stackops.runbook.restore_drill) restore it with parallel
        jobs straight from the stored file. It stays one zstd stream to every other reader
        (C(zstd -d | pg_restore) as before).
      - C(plain) is SQL that C(psql) replays (the runbooks' format).
      - C(directory) is a directory of files written by parallel C(pg_dump) O(jobs); its compression is done by
        pg_dump itself (gzip, or zstd from PostgreSQL 16 on).
      - O(all_databases) and O(globals_only) are always C(plain).
    type: str
    choices: [custom, plain, directory]
    default: custom
  compression:
    description:
      - C(zstd) (multi-threaded), C(gzip) or C(none).
      - Default is C(zstd); for the C(directory) format with a C(pg_dump) older than 16 the default is C(gzip),
        since older pg_dump cannot write zstd.
    type: str
    choices: [zstd, gzip, none]
  compression_level:
    description:
      - Compression level, 1 to 19 for zstd (default 2) and 1 to 9 for gzip (default 6).
      - zstd level 2 is already smaller than gzip level 6 on realistic dumps while leaving the CPU to pg_dump and
        the server; higher levels trade speed for size.
    type: int
  jobs:
    description: Parallel dump jobs; only with O(format=directory).
    type: int
  content:
    description:
      - C(full) dumps the schema and the data; C(schema) only the schema (the runbooks' "schema backup",
        C(pg_dump --schema-only)); C(data) only the data (C(pg_dump --data-only)).
      - A C(schema) or C(data) backup is labelled C(DATABASE.schema) or C(DATABASE.data), so it has retention of its
        own and is never taken for the latest full backup of the database.
      - Only with O(database).
    type: str
    choices: [full, schema, data]
    default: full
  row_counts:
    description:
      - C(exact) counts every table's rows in the very snapshot the dump is taken in (C(pg_export_snapshot()) and
        C(pg_dump --snapshot)), so a restore can be proven against the manifest.
      - C(estimate) records the planner's estimates; C(none) records nothing.
      - Only C(none) applies to O(all_databases) and O(globals_only).
    type: str
    choices: [exact, estimate, none]
  verify:
    description:
      - Read the backup back before it gets its final name, checking its sha256, decompressing it fully, and looking for
        the dump's completion line (plain) or running C(pg_restore --list) (custom, directory).
    type: bool
    default: true
  lock_timeout:
    description:
      - Seconds to wait for another run that holds the lock on O(dest). C(0) fails at once.
    type: int
    default: 0
  tag:
    description: A free-form label stored in the manifest, such as C(pre-migration).
    type: str
notes:
  - The password is handed over through a private passfile (or the exec environment with O(container)), never
    through a command line.
  - When the offsite upload fails, the local backup stays complete and verified, and the task fails saying where it is.
seealso:
  - module: community.postgresql.postgresql_db
"""

EXAMPLES = r"""
- name: Back up the app database the way the runbook does, only safely
  stackops.runbook.pg_backup:
    database: app
    login_host: 127.0.0.1
    login_user: backup
    login_password: "{{ vault_backup_password }}"
    dest: /var/backups/postgres
    keep_days: 7
    keep_last: 3

- name: Back up from inside the compose stack's postgres container, and copy it to MinIO
  stackops.runbook.pg_backup:
    container: app-postgres-1
    database: app
    dest: /var/backups/postgres
    keep_days: 7
    s3:
      bucket: backups
      prefix: prod/postgres
      endpoint_url: https://minio.internal:9000
      access_key: "{{ vault_s3_access_key }}"
      secret_key: "{{ vault_s3_secret_key }}"

- name: Parallel directory-format dump of a large database
  stackops.runbook.pg_backup:
    database: app
    dest: /var/backups/postgres
    format: directory
    jobs: 4

- name: Roles and other global objects
  stackops.runbook.pg_backup:
    globals_only: true
    dest: /var/backups/postgres
"""

RETURN = r"""
path:
  description: The backup (a file, or a directory for the directory format).
  returned: always
  type: str
  sample: /var/backups/postgres/app_20261122T030000Z.dump.zst
manifest_path:
  description: The manifest beside the backup.
  returned: always
  type: str
  sample: /var/backups/postgres/app_20261122T030000Z.manifest.json
manifest:
  description: The manifest written beside the backup.
  returned: success and not check mode
  type: dict
  sample: {"database": "app", "format": "custom", "compression": "zstd", "size": 1048576, "row_counts": {"public.users": 20000}}
sha256:
  description: sha256 of the backup file (for a directory, over the sorted per-file checksums).
  returned: success and not check mode
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
size:
  description: Bytes written.
  returned: success and not check mode
  type: int
  sample: 1048576
duration:
  description: Seconds the whole task took.
  returned: always
  type: float
  sample: 12.5
format:
  description: The format of the backup.
  returned: always
  type: str
  sample: custom
compression:
  description: The compression of the backup.
  returned: always
  type: str
  sample: zstd
s3_uri:
  description: Where the offsite copy went.
  returned: when O(s3) is set and not check mode
  type: str
  sample: s3://backups/prod/postgres/app_20261122T030000Z.dump.zst
future_backups:
  description:
    - Backups dated later than this host's clock (beyond five minutes of skew). They are never counted as newer
      and never pruned, and each is reported as a warning (a wrong clock or a copied file; check the clocks).
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "app_20301101T030000Z", "location": "/var/backups/postgres/app_20301101T030000Z.dump.zst",
       "time": "2030-11-01T03:00:00.000000Z", "reason": "dated in the future ..."}
locked:
  description:
    - The backups in S3 retention would remove but whose Object Lock (O(s3.object_lock_mode)) has not expired; they
      stay, and a later run prunes them once it has.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "app_20261101T030000Z", "location": "s3://backups/prod/app_20261101T030000Z", "until": "2026-12-01T03:00:00.000000Z",
            "reason": "older than 7 days (21.0 days), but its object lock lasts until 2026-12-01T03:00:00.000000Z"}]
pruned:
  description: The backups retention removed (or would remove, in check mode), locally and in S3.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "app_20261101T030000Z", "location": "/var/backups/postgres/app_20261101T030000Z.dump.zst", "reason": "older than 7 days (21.0 days)"}]
retained:
  description: The local backups that stay after retention (in check mode, would stay), newest first, and what keeps each.
  returned: always
  type: list
  elements: dict
  sample:
    - name: app_20261122T030000Z
      location: /var/backups/postgres/app_20261122T030000Z.dump.zst
      kept_by: ["the newest verified backup", "keep_daily: the newest of day 2026-11-22"]
anomalous:
  description:
    - Whether the backup looks like lost data next to the newest normal backup of its series (see O(anomaly_threshold)).
  returned: success and not check mode
  type: bool
  sample: false
anomalies:
  description: What looks lost, one sentence each (empty when nothing does).
  returned: success and not check mode
  type: list
  elements: str
  sample: ["table public.orders lost 100% of its rows (5000 in app_20261121T030000Z, 0 now)"]
retention_held:
  description: Why retention deleted nothing this run (an anomalous backup not acknowledged).
  returned: when the backup is anomalous and not acknowledged
  type: str
  sample: "app_20261122T030000Z looks like lost data next to app_20261121T030000Z (...): it is kept, and retention deleted nothing"
removed_partials:
  description: Leftovers of earlier runs that died (C(*.partial)), removed under the lock.
  returned: always
  type: list
  elements: str
  sample: []
"""

import datetime
import os

from ansible_collections.stackops.runbook.plugins.module_utils import _backup
from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._dump import DumpWriter
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._compression import COMPRESSIONS, check_level
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import (
    ClientContext,
    postgres_common_argument_spec,
)
from ansible_collections.stackops.runbook.plugins.module_utils._storage import LocalStorage


def argument_spec():
    spec = postgres_common_argument_spec()
    spec.update(_backup.pipeline_argument_spec())
    spec.update(
        database=dict(type="str"),
        all_databases=dict(type="bool", default=False),
        globals_only=dict(type="bool", default=False),
        format=dict(type="str", default="custom", choices=["custom", "plain", "directory"]),
        compression=dict(type="str", choices=list(COMPRESSIONS)),
        compression_level=dict(type="int"),
        jobs=dict(type="int"),
        row_counts=dict(type="str", choices=["exact", "estimate", "none"]),
        content=dict(type="str", choices=["full", "schema", "data"], default="full"),
        verify=dict(type="bool", default=True),
        tag=dict(type="str"),
    )
    return spec


def validate(module):
    """Every check on the input that needs no server: a clear message naming the parameter."""
    p = module.params
    chosen = [k for k in ("database", "all_databases", "globals_only") if p[k]]
    if len(chosen) != 1:
        module.fail_json(msg="set exactly one of database, all_databases and globals_only (got: %s)"
                             % (", ".join(chosen) or "none"))
    if p["database"] is not None and not mf.is_safe_name(p["database"]):
        module.fail_json(msg="database=%r cannot be used: it becomes part of the backup file name, so it may only "
                             "hold letters, digits, '_', '.' and '-', without '..' (no path separators or shell characters)"
                             % p["database"])
    if p["format"] == "directory" and (p["all_databases"] or p["globals_only"]):
        module.fail_json(msg="format=%s does not apply to all_databases or globals_only (pg_dumpall writes plain SQL); "
                             "leave format out" % p["format"])
    if p["jobs"] is not None:
        if p["format"] != "directory" or p["all_databases"] or p["globals_only"]:
            module.fail_json(msg="jobs=%s needs format=directory: only the directory format dumps in parallel"
                                 % p["jobs"])
        if p["jobs"] < 1:
            module.fail_json(msg="jobs=%s must be 1 or more" % p["jobs"])
    if p["compression"] is not None:
        problem = check_level(p["compression"], p["compression_level"])
        if problem:
            module.fail_json(msg=problem)
    elif p["compression_level"] is not None:
        problem = check_level("zstd" if p["format"] != "directory" else "gzip", p["compression_level"])
        if problem:
            module.fail_json(msg=problem + " (set compression to say which one)")
    problem = _backup.pipeline_options_error(p)
    if problem:
        module.fail_json(msg=problem)
    if p["content"] != "full" and not p["database"]:
        module.fail_json(msg="content=%s applies to one database: set database, or leave content out with "
                             "all_databases and globals_only" % p["content"])
    if p["row_counts"] not in (None, "none") and (p["all_databases"] or p["globals_only"]):
        module.fail_json(msg="row_counts=%s applies to a single database only; leave it out with all_databases "
                             "or globals_only" % p["row_counts"])
    require_libraries(module, zstandard=p["compression"] in (None, "zstd") and p["format"] != "directory",
                      docker=bool(p["container"]), boto3=bool(p["s3"]))


def main():
    module = RunbookModule(argument_spec=argument_spec(), supports_check_mode=True)
    validate(module)
    p = module.params
    writer = DumpWriter(p)
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        with ClientContext(p) as runner:
            writer.connect(runner)
            if module.check_mode:
                result = _backup.plan(LocalStorage(p["dest"]), writer, p, now)
                result["msg"] = "check mode: would write %s and remove %d old backup(s)" % (
                    os.path.basename(result["path"]), len(result["pruned"]))
            else:
                result = _backup.run(writer, p, now)
    except RunbookError as exc:
        module.fail_from(exc, "backup of %s failed" % writer.label, kept=_backup.NOTHING_KEPT)
    result.update(format=writer.format, compression=writer.compression, s3_uri=result.get("s3_uri"))
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
