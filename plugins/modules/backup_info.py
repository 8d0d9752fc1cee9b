#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_info
short_description: List the backups pg_backup made, check their freshness (RPO) and re-verify them
version_added: 0.1.0
description:
  - Lists the backups in a local directory or an S3 prefix from their manifests, newest last, with the latest
    one per database.
  - With O(max_age) (the recovery point objective) tells whether the latest backup is fresh, and fails when
    told to.
  - With O(verify) re-reads backups and checks them against their manifests (size, sha256, full
    decompression), which finds bit rot and truncated files.
requirements:
  - python zstandard (C(zstandard)) to verify zstd-compressed backups
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.storage
  - stackops.runbook.encryption.identity
  - stackops.runbook._attributes.actiongroup_storage
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
options:
  path:
    description:
      - Directory of the backups (the O(stackops.runbook.pg_backup#module:dest) of pg_backup).
      - Or one dump file another tool made, such as a runbook cron job's C(app_2026-11-21.sql.gz) or
        C(pg_dump -Fc) C(.dump), recognised by its content; O(verify) then decompresses it and checks its
        completion line. It has no manifest, so no row counts; M(stackops.runbook.backup_import) adopts it.
    type: path
  database:
    description:
      - Only the backups of this database (or label, such as C(globals)).
      - Default is every database; O(max_age) then applies to the latest backup of each.
    type: str
  max_age:
    description:
      - The oldest the latest backup may be to count as fresh, in seconds or with a unit (C(90m), C(26h), C(7d)).
    type: str
  fail_if_stale:
    description: Fail the task when a latest backup is older than O(max_age), or when there is none.
    type: bool
    default: false
  verify:
    description:
      - Re-read backups and check them against their manifests (size, sha256, full decompression).
      - A backup that does not check out fails the task, naming it and what is wrong.
      - An encrypted backup is decrypted with O(age_identity_file) or O(age_identity) and then checked like any
        other; without an identity only the stored file's size and sha256 are checked (the host may hold only the
        public keys).
    type: bool
    default: false
  verify_scope:
    description: With O(verify), C(latest) checks the latest backup of each database, C(all) every backup.
    type: str
    choices: [latest, all]
    default: latest
notes:
  - Exactly one of O(path) and O(s3) is required.
seealso:
  - module: stackops.runbook.pg_backup
"""

EXAMPLES = r"""
- name: Fail when last night's backup is missing (RPO 26 hours)
  stackops.runbook.backup_info:
    path: /var/backups/postgres
    database: app
    max_age: 26h
    fail_if_stale: true

- name: Check the offsite copies for bit rot
  stackops.runbook.backup_info:
    s3:
      bucket: backups
      prefix: prod/postgres
    verify: true
    verify_scope: all
"""

RETURN = r"""
bucket:
  description:
    - With O(s3), how the bucket protects the backups - C(versioning) (Enabled, Suspended or Disabled), C(object_lock)
      (Enabled or Disabled) and its C(default_retention) (as S3 returns it, or null); null for local backups.
  returned: always
  type: dict
  sample: {"versioning": "Enabled", "object_lock": "Enabled", "default_retention": {"Mode": "GOVERNANCE", "Days": 30}}
backups:
  description: Every backup found, oldest first.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "app_20261122T030000Z", "database": "app", "time": "2026-11-22T03:00:00.000000Z", "timestamp": 1795316400,
            "duration_seconds": 41.2, "size": 1048576,
            "format": "custom", "compression": "zstd", "sha256": "9f86d0...", "verified": true, "age_seconds": 3600,
            "location": "/var/backups/postgres/app_20261122T030000Z.dump.zst"}]
latest:
  description: The newest backup of each database (label), keyed by it.
  returned: always
  type: dict
  sample: {"app": {"name": "app_20261122T030000Z", "age_seconds": 3600}}
fresh:
  description: Whether every latest backup is younger than O(max_age); null without O(max_age).
  returned: always
  type: bool
  sample: true
future_backups:
  description:
    - Backups dated later than this host's clock (beyond five minutes of skew). They are never the latest and
      never make a database look fresh; each is also reported as a warning.
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "app_20301101T030000Z", "location": "/var/backups/postgres/app_20301101T030000Z.dump.zst",
       "time": "2030-11-01T03:00:00.000000Z", "reason": "dated in the future ..."}
age_seconds:
  description: Age of the newest latest backup (of O(database) when given); null when there is none.
  returned: always
  type: int
  sample: 3600
stale:
  description: The databases whose latest backup is older than O(max_age).
  returned: always
  type: list
  elements: str
  sample: []
verified:
  description: The backups O(verify) re-read and found good, with how they were checked.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "app_20261122T030000Z", "method": "sha256+decompress"}]
"""

import datetime
import os

from ansible_collections.stackops.runbook.plugins.module_utils._age import Identity, identity_argument_spec, identity_options_error
from ansible_collections.stackops.runbook.plugins.module_utils._backups import private_workdir, verify_stored
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._imported import describe_file
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._storage import (
    BackupEntry,
    LocalStorage,
    S3Storage,
    future_dated,
    in_future,
    s3_argument_spec,
)


def describe(entry, now):
    info = entry.as_dict()
    info["age_seconds"] = int((now - entry.when).total_seconds())
    return info


def verify_entries(storage, entries, identity):
    """(what verification found for each good backup, the message of each damaged one)."""
    verified, damaged = [], []
    with private_workdir("stackops-backup-info-") as workdir:
        for entry in entries:
            try:
                verified.append(dict(name=entry.name, **verify_stored(storage, entry.manifest, identity, workdir)))
            except RunbookError as exc:  # damaged, or unreadable from its storage
                damaged.append(str(exc))
    return verified, damaged


def main():
    module = RunbookModule(
        argument_spec=dict(
            path=dict(type="path"),
            s3=s3_argument_spec(),
            database=dict(type="str"),
            max_age=dict(type="str"),
            fail_if_stale=dict(type="bool", default=False),
            verify=dict(type="bool", default=False),
            verify_scope=dict(type="str", default="latest", choices=["latest", "all"]),
            **identity_argument_spec()
        ),
        mutually_exclusive=[("path", "s3")],
        required_one_of=[("path", "s3")],
        supports_check_mode=True,
    )
    p = module.params
    if p["database"] is not None and not mf.is_safe_name(p["database"]):
        module.fail_json(msg="database=%r is not a name pg_backup uses: letters, digits, '_', '.' and '-' only, without '..'"
                             % p["database"])
    max_age = module.seconds("max_age")
    if p["fail_if_stale"] and max_age is None:
        module.fail_json(msg="fail_if_stale needs max_age (the RPO, such as 26h)")
    problem = identity_options_error(p)
    if problem:
        module.fail_json(msg=problem)
    require_libraries(module, boto3=bool(p["s3"]), zstandard=p["verify"])

    now = datetime.datetime.now(datetime.timezone.utc)
    bucket = None
    try:
        if p["path"] and os.path.isfile(p["path"]):
            # one dump another tool made (a runbook's cron job), read from its content
            manifest = describe_file(p["path"], p["database"])
            storage = LocalStorage(os.path.dirname(p["path"]))
            when = datetime.datetime.strptime(manifest["finished_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc)
            entries = [BackupEntry(manifest["name"], when, manifest, p["path"])]
        else:
            storage = S3Storage(p["s3"]) if p["s3"] else LocalStorage(p["path"])
            entries = storage.list_backups(p["database"])
            bucket = storage.bucket_protection() if p["s3"] else None
    except RunbookError as exc:
        module.fail_from(exc, "cannot list the backups")

    latest = {}
    for entry in entries:  # oldest first, so the last one seen per label is its latest
        if not in_future(entry, now):  # a wrong clock's backup is never the latest
            parsed = mf.parse_name(entry.name)
            latest[parsed[0] if parsed else p["database"] or entry.name] = entry
    result = dict(changed=False, bucket=bucket, backups=[describe(e, now) for e in entries],
                  latest={label: describe(e, now) for label, e in latest.items()}, verified=[],
                  future_backups=future_dated(entries, now))
    module.warn_future_backups(result["future_backups"])
    newest = max(latest.values(), key=lambda e: e.when, default=None)
    result["age_seconds"] = int((now - newest.when).total_seconds()) if newest else None

    result["fresh"] = None
    result["stale"] = []
    if max_age is not None:
        wanted = [p["database"]] if p["database"] else sorted(latest)
        result["stale"] = [label for label in wanted
                           if label not in latest or (now - latest[label].when).total_seconds() > max_age]
        result["fresh"] = bool(wanted) and not result["stale"]

    to_verify = [] if not p["verify"] else entries if p["verify_scope"] == "all" else list(latest.values())
    result["verified"], damaged = verify_entries(storage, to_verify, Identity.from_params(p))
    if damaged:
        module.fail_json(msg="%d backup(s) do not match their manifests: %s" % (len(damaged), "; ".join(damaged)),
                         **result)
    if p["fail_if_stale"] and not result["fresh"]:
        module.fail_json(msg="backups are stale (RPO %s): %s" % (p["max_age"], ", ".join(
            "%s (%s)" % (label, "none found" if label not in latest else "latest is %.1f hours old" % (
                (now - latest[label].when).total_seconds() / 3600)) for label in result["stale"]) or "none found"),
            **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
