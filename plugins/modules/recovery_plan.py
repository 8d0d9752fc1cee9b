#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: recovery_plan
short_description: Pick the backup set that brings a lost server back from its offsite copy, and check the new host is empty
version_added: 0.2.0
description:
  - The first step of disaster recovery (the M(stackops.runbook.disaster_recovery) role). Lists the offsite copy the
    backup role writes - databases and the globals under O(s3.prefix), volumes under C(PREFIX/volumes), the config
    under C(PREFIX/config), the serving release's images under C(PREFIX/images) - and picks of each series the newest
    backup that was verified when it was made and is not marked anomalous (a backup of a wiped database is passed
    over, and the plan says so). O(s3) is required - the backup role's C(backup_s3).
  - Returns the plan - which backups, their sizes and ages, the restore time the drill history predicts, the age of
    the data (the recovery point) - and changes nothing.
  - Checks the host that is to receive them. When the project directory holds files, or docker holds containers or
    volumes of the compose project, or one of the volumes to restore exists, recovery would overwrite them, so the
    task fails naming them unless O(confirm) is the project's name. A host where an earlier recovery was interrupted
    (O(progress_file) exists) continues without it.
requirements:
  - python boto3 (C(boto3))
  - The Python docker SDK (C(docker))
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.storage
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_docker_storage
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode returns the same plan.
  diff_mode:
    support: none
    description: Nothing is changed.
options:
  databases:
    description: The databases to recover; default every database with a backup in the offsite copy.
    type: list
    elements: str
    default: []
  volumes:
    description: The docker volumes to recover; default every volume with a backup in the offsite copy.
    type: list
    elements: str
    default: []
  require:
    description:
      - Series that must have a backup, or the task fails before anything is done - C(config) (nothing of the project
        comes back without it), C(images) (a stack built on the server, with no registry), C(globals).
    type: list
    elements: str
    choices: [config, images, globals]
    default: [config]
  project_dir:
    description: The compose project's directory on this host (where the config backup puts it back).
    type: path
    required: true
  project_name:
    description: The compose project's name (its containers' and volumes' label); default the directory's name.
    type: str
  confirm:
    description: The project's name, to recover onto a host that holds data of it (its files and volumes are replaced).
    type: str
  progress_file:
    description:
      - A file the disaster_recovery role writes before it changes anything and removes when the stack is back. While
        it exists the data on the host is the recovery's own, so a re-run continues without O(confirm).
    type: path
  drill_history:
    description: The history of M(stackops.runbook.restore_drill) (C(history.jsonl)) whose passing drills predict the restore time.
    type: path
    default: /var/log/stackops-runbook/drills/history.jsonl
seealso:
  - module: stackops.runbook.backup_info
  - module: stackops.runbook.config_restore
"""

EXAMPLES = r"""
- name: What recovering the server takes
  stackops.runbook.recovery_plan:
    s3: "{{ backup_s3 }}"
    project_dir: /srv/app
    project_name: app
  register: plan
"""

RETURN = r"""
config:
  description: The config backup to restore (name, label, time, timestamp, age_seconds, size, encrypted, location), or null.
  returned: always
  type: dict
  sample: {"name": "config_20261122T030000Z", "size": 20480, "age_seconds": 3600}
images:
  description: The image backup (of the serving release, in C(release)), or null.
  returned: always
  type: dict
globals:
  description: The globals backup (roles), or null.
  returned: always
  type: dict
databases:
  description: The backup of each database, as for RV(config) with C(label) the database.
  returned: always
  type: list
  elements: dict
volumes:
  description: The backup of each volume, C(label) the volume.
  returned: always
  type: list
  elements: dict
passed_over:
  description: Newer backups that were not picked, and why (anomalous, not verified).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "app_20261123T030000Z", "reason": "anomalous (table public.users lost 100% of its rows ...)"}]
total_size:
  description: Bytes to download.
  returned: always
  type: int
predicted_seconds:
  description: The databases' restore time by the last passing drills in O(drill_history); null without one for each.
  returned: always
  type: float
prediction:
  description: Where RV(predicted_seconds) comes from, in words.
  returned: always
  type: str
data_timestamp:
  description: Time (UNIX seconds) of the oldest database or volume backup picked - what the recovered data is as of.
  returned: always
  type: int
holds_data:
  description: What on the host recovery would overwrite (files, containers, volumes); empty on a fresh host.
  returned: always
  type: list
  elements: str
resuming:
  description: Whether O(progress_file) says an earlier recovery of this project was interrupted here.
  returned: always
  type: bool
plan:
  description: The plan in lines, for the output.
  returned: always
  type: list
  elements: str
"""

import datetime
import os

from ansible_collections.stackops.runbook.plugins.module_utils import _recovery as rc
from ansible_collections.stackops.runbook.plugins.module_utils._docker import (
    docker_argument_spec,
    docker_client,
    docker_errors,
    live_containers,
)
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._storage import S3Storage, s3_argument_spec

KINDS = dict(databases="database", globals="globals", volumes="volume", config="config", images="images")


def pick_series(p, kind, wanted, now, passed_over):
    """The picked backup of each label of ``kind`` (only ``wanted`` labels when given)."""
    entries = S3Storage(rc.s3_for(p["s3"], kind)).list_backups(kind=KINDS[kind])
    labels = rc.by_label(entries)
    missing = [label for label in wanted if label not in labels]
    if missing:
        raise RunbookError("no %s backup of %s in s3://%s/%s (it holds %s): nothing was changed" % (
            KINDS[kind], ", ".join(missing), p["s3"]["bucket"], rc.s3_for(p["s3"], kind).get("prefix") or "",
            ", ".join(sorted(labels)) or "none"))
    picked = {}
    for label in sorted(wanted or labels):
        entry, passed = rc.pick(labels[label], now)
        passed_over.extend(passed)
        if entry is None:
            raise RunbookError("no verified, normal %s backup of %s in the offsite copy (%s): nothing was changed" % (
                KINDS[kind], label, "; ".join("%s %s" % (x["name"], x["reason"]) for x in passed)))
        picked[label] = rc.describe(entry, now)
    return picked


def what_holds_data(p, project_name, volumes):
    found = []
    entries = os.listdir(p["project_dir"]) if os.path.isdir(p["project_dir"]) else []
    if entries:
        found.append("the project directory %s holds %d entries" % (p["project_dir"], len(entries)))
    client = docker_client(p["docker_host"])
    label = "com.docker.compose.project=%s" % project_name
    with docker_errors("cannot list the containers and volumes of project %s" % project_name):
        containers = [c.name for c in live_containers(client, {"label": label}, include_stopped=True)]
        existing = {v.name for v in client.volumes.list(filters={"label": label})}
        existing.update(v.name for v in client.volumes.list() if v.name in volumes)
    if containers:
        found.append("containers of project %s: %s" % (project_name, ", ".join(sorted(containers))))
    if existing:
        found.append("volumes: %s" % ", ".join(sorted(existing)))
    return found


def make_plan(p, now):
    passed_over = []
    plan = dict(changed=False, passed_over=passed_over)
    for kind in ("config", "images", "globals"):
        plan[kind] = pick_series(p, kind, [], now, passed_over).get(kind)
    plan["databases"] = list(pick_series(p, "databases", p["databases"], now, passed_over).values())
    plan["volumes"] = list(pick_series(p, "volumes", p["volumes"], now, passed_over).values())
    missing = [kind for kind in p["require"] if not plan[kind]]
    if missing:
        raise RunbookError("the offsite copy s3://%s/%s holds no %s backup (the backup role's %s): without it the "
                           "stack cannot come back as it was, so nothing was changed" % (
                               p["s3"]["bucket"], p["s3"].get("prefix") or "", " or ".join(missing), ", ".join(
                                   dict(config="backup_config_paths", images="backup_images_release_ledger",
                                        globals="backup_globals")[k] for k in missing)))
    picked = [x for x in [plan["config"], plan["images"], plan["globals"]] + plan["databases"] + plan["volumes"] if x]
    plan["total_size"] = sum(x["size"] or 0 for x in picked)
    plan["predicted_seconds"], plan["prediction"] = rc.predicted_seconds(plan["databases"],
                                                                         rc.drill_times(p["drill_history"]))
    data = plan["databases"] + plan["volumes"]
    plan["data_timestamp"] = min(x["timestamp"] for x in data) if data else None
    return plan


def main():
    spec = dict(
        s3=s3_argument_spec(),
        databases=dict(type="list", elements="str", default=[]),
        volumes=dict(type="list", elements="str", default=[]),
        require=dict(type="list", elements="str", choices=["config", "images", "globals"], default=["config"]),
        project_dir=dict(type="path", required=True),
        project_name=dict(type="str"),
        confirm=dict(type="str"),
        progress_file=dict(type="path"),
        drill_history=dict(type="path", default="/var/log/stackops-runbook/drills/history.jsonl"),
    )
    spec.update(docker_argument_spec())
    module = RunbookModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if not p["s3"]:
        module.fail_json(msg="s3 is required: the offsite copy the backup role wrote to (its backup_s3: bucket, prefix, "
                             "endpoint_url, credentials)")
    if not os.path.isabs(p["project_dir"]):
        module.fail_json(msg="project_dir=%r is not an absolute path: name the directory the compose project was in, "
                             "such as /srv/app" % p["project_dir"])
    require_libraries(module, boto3=True, docker=True)
    project_name = p["project_name"] or os.path.basename(p["project_dir"].rstrip("/"))
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        result = make_plan(p, now)
        result["resuming"] = bool(p["progress_file"]) and os.path.exists(p["progress_file"])
        result["holds_data"] = what_holds_data(p, project_name, [v["label"] for v in result["volumes"]])
    except RunbookError as exc:
        module.fail_from(exc, "cannot plan the recovery")
    result["plan"] = rc.plan_lines(result)
    if result["holds_data"] and not result["resuming"] and p["confirm"] != project_name:
        module.fail_json(msg="Refusing to recover %s onto this host: it holds data recovery would replace (%s). If it "
                             "is to be replaced, set confirm (disaster_recovery_confirm) to %s; nothing was changed."
                             % (project_name, "; ".join(result["holds_data"]), project_name), **result)
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
