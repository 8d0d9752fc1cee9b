#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: runbook_status
short_description: Tell from what the roles left on a host whether its backups, drills, releases and secrets need a person
version_added: 0.2.0
description:
  - The runbooks' morning check in one task (the report role's C(status) entry point, C(playbooks/status.yml)).
  - Reads what the other roles keep on the host, changes nothing, and returns one row per thing a person looks
    after, with the problems among them.
  - "Backups: the newest backup of each database, the globals and each volume, in O(backup_path) and O(volume_path)
    (or, for a series with no local copy, in O(s3)): its age against O(rpo), size, whether it was verified, is
    encrypted, has an offsite copy of the same name in O(s3), and is anomalous (a backup of a wiped database)."
  - "Drills: the last drill of each database in C(history.jsonl) of O(drill_log_dir): passed, restore time against
    its RTO, age against O(drill_interval)."
  - "Releases: the release serving and how the last deploy or rollback ended, from compose_release's O(release_ledger)."
  - "Secrets: when each secret in O(secrets_state_dir) was last rotated (against O(rotation_interval)) and whether a
    rotation is unfinished."
  - A problem is something that needs a person - a backup older than the RPO, not verified, anomalous or not
    offsite, a failed, overdue or too slow drill, a deploy that did not end well, an overdue or unfinished rotation.
    Worth knowing but not wrong (a secret never rotated by this collection) is a note.
requirements:
  - python boto3 (C(boto3)) with O(s3)
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.storage
  - stackops.runbook._attributes.actiongroup_storage
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode returns the same.
  diff_mode:
    support: none
    description: Nothing is changed.
options:
  backup_path:
    description: The directory of the database and globals backups (the backup role's C(backup_dest)).
    type: path
  volume_path:
    description: The directory of the volume backups (the backup role's C(backup_volume_dest)).
    type: path
  s3:
    description:
      - The offsite copy (the backup role's C(backup_s3)); databases and globals under its prefix, volumes under
        C(PREFIX/volumes).
      - Without it no offsite check is made and the rows' C(offsite) is null.
  volume_s3_prefix:
    description:
      - The key prefix of the volume backups' offsite copies in the bucket of O(s3), when it is not C(PREFIX/volumes)
        (the prefix of the backup role's C(backup_volume_s3) when the inventory sets it).
    type: str
  databases:
    description: Databases (and C(globals)) that must have a backup; one missing is a problem.
    type: list
    elements: str
    default: []
  volumes:
    description: Volumes that must have a backup.
    type: list
    elements: str
    default: []
  rpo:
    description: The recovery point objective (the backup role's C(backup_rpo)), such as C(26h); a newer backup is fresh.
    type: str
  drill_log_dir:
    description: The drill logs' directory (the restore_drill role's C(restore_drill_log_dir)).
    type: path
  drill_databases:
    description: Databases that must have been drilled on this host; one never drilled is a problem.
    type: list
    elements: str
    default: []
  drill_interval:
    description: How often each database is drilled (C(restore_drill_interval)), such as C(8d).
    type: str
  release_ledger:
    description: compose_release's ledger (the deploy role's C(deploy_ledger_path)).
    type: path
  secrets_state_dir:
    description: Where secret_rotate keeps the secrets' versions (C(rotate_secrets_state_dir)).
    type: path
  rotations:
    description: The secrets to report, by name; default every one in O(secrets_state_dir).
    type: list
    elements: str
    default: []
  rotation_interval:
    description: How often each secret is rotated (C(rotate_secrets_interval)), such as C(100d).
    type: str
seealso:
  - module: stackops.runbook.backup_info
  - module: stackops.runbook.health_probe
"""

EXAMPLES = r"""
- name: Is everything on this host OK?
  stackops.runbook.runbook_status:
    backup_path: /var/backups/postgres
    volume_path: /var/backups/volumes
    s3: "{{ backup_s3 }}"
    databases: [app, globals]
    volumes: [app_uploads]
    rpo: 26h
    drill_log_dir: /var/log/stackops-runbook/drills
    drill_interval: 8d
    release_ledger: /var/lib/stackops-runbook/releases/app.jsonl
    secrets_state_dir: /var/lib/stackops-runbook/secrets
    rotation_interval: 100d
  register: status

- name: Fail when something needs a person
  ansible.builtin.fail:
    msg: "{{ status.problems | join('; ') }}"
  when: status.problems | length > 0
"""

RETURN = r"""
backups:
  description:
    - One row per database, globals and volume - C(kind) (database, globals or volume), C(label), C(what) (how the
      page names it), C(name) (null when there is none), C(time), C(age_seconds), C(age) (as text), C(rpo_seconds),
      C(size), C(size_text), C(verified), C(encrypted), C(anomalous), C(anomalies), C(local), C(offsite) (null
      without O(s3)), C(problems).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "database", "label": "app", "name": "app_20261128T030000Z", "age_seconds": 18000, "size": 8812,
            "verified": true, "encrypted": true, "offsite": true, "anomalous": false, "problems": []}]
drills:
  description: The last drill of each database - C(database), C(time), C(age_seconds), C(age), C(passed), C(backup),
    C(restore_seconds), C(rto_seconds), C(failures), C(log), C(problems).
  returned: always
  type: list
  elements: dict
release:
  description: C(serving_version), C(serving_since), C(last_action), C(last_version), C(last_result), C(last_time),
    C(last_actor), C(problems); null when the ledger has no release.
  returned: always
  type: dict
secrets:
  description: Each secret's C(name), C(rotated) (time, null when never), C(age_seconds), C(age), C(pending), C(problems),
    C(notes).
  returned: always
  type: list
  elements: dict
lines:
  description: The backups as one line each, for the play's output.
  returned: always
  type: list
  elements: str
  sample: ["database app: app_20261128T030000Z, 5.0 h old (RPO 26.0 h), 8.6 KiB, verified, encrypted, offsite"]
problems:
  description: What needs a person, one sentence each; empty when everything is OK.
  returned: always
  type: list
  elements: str
  sample: ["newest backup of database app is 30.2 h old, older than the RPO (26.0 h)"]
notes:
  description: Worth knowing, not wrong.
  returned: always
  type: list
  elements: str
"""

import datetime
import os

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils import _status as st
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._recovery import s3_for
from ansible_collections.stackops.runbook.plugins.module_utils._reports import read_lines
from ansible_collections.stackops.runbook.plugins.module_utils._storage import LocalStorage, S3Storage, s3_argument_spec


# the backup kinds of each directory: pg_backup's (the backup role's backup_dest) and volume_backup's
DATABASE_KINDS = ("database", "globals", "all_databases")
VOLUME_KINDS = ("volume",)


def listing(path, s3, kinds):
    """The backups of ``kinds`` here and offsite (None without s3), oldest first."""
    def of_kinds(entries):
        return [e for e in entries if e.manifest.get("kind") in kinds]
    local = of_kinds(LocalStorage(path).list_backups()) if path else []
    return local, of_kinds(S3Storage(s3).list_backups()) if s3 else None


def main():
    module = RunbookModule(
        argument_spec=dict(
            backup_path=dict(type="path"),
            volume_path=dict(type="path"),
            s3=s3_argument_spec(),
            volume_s3_prefix=dict(type="str"),
            databases=dict(type="list", elements="str", default=[]),
            volumes=dict(type="list", elements="str", default=[]),
            rpo=dict(type="str"),
            drill_log_dir=dict(type="path"),
            drill_databases=dict(type="list", elements="str", default=[]),
            drill_interval=dict(type="str"),
            release_ledger=dict(type="path"),
            secrets_state_dir=dict(type="path"),
            rotations=dict(type="list", elements="str", default=[]),
            rotation_interval=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for option in ("databases", "volumes", "drill_databases", "rotations"):
        unsafe = [name for name in p[option] if not mf.is_safe_name(name)]
        if unsafe:
            module.fail_json(msg="%s: %s are not names the roles use (letters, digits, '_', '.' and '-')"
                                 % (option, ", ".join(unsafe)))
    rpo, drill_interval, rotation_interval = (module.seconds(o) for o in ("rpo", "drill_interval", "rotation_interval"))
    require_libraries(module, boto3=bool(p["s3"]))
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        backups = st.backup_rows("database", *listing(p["backup_path"], p["s3"], DATABASE_KINDS), p["databases"], rpo, now)
        if p["volume_path"] or p["volumes"]:
            volume_s3 = None
            if p["s3"]:
                volume_s3 = s3_for(p["s3"], "volumes") if p["volume_s3_prefix"] is None \
                    else dict(p["s3"], prefix=p["volume_s3_prefix"])
            backups += st.backup_rows("volume", *listing(p["volume_path"], volume_s3, VOLUME_KINDS), p["volumes"], rpo, now)
        secrets = st.secret_rows(p["secrets_state_dir"], p["rotations"], rotation_interval, now) \
            if p["secrets_state_dir"] else []
    except RunbookError as exc:
        module.fail_from(exc, "cannot read the backups or the secrets")
    drills = st.drill_rows(read_lines(os.path.join(p["drill_log_dir"], "history.jsonl")), p["drill_databases"],
                           drill_interval, now) if p["drill_log_dir"] else []
    release = st.release_row(read_lines(p["release_ledger"]))
    module.exit_json(changed=False, backups=backups, drills=drills, release=release, secrets=secrets,
                     lines=[st.backup_line(row) for row in backups],
                     problems=st.problems_of(backups, drills, [release], secrets),
                     notes=[note for row in secrets for note in row["notes"]])


if __name__ == "__main__":
    main()
