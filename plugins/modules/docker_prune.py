#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_prune
short_description: Remove stopped containers and unused images older than a limit, never a release to roll back to
version_added: 0.1.0
description:
  - The runbooks' weekly C(docker system prune), with the guard rails it lacks.
  - Removes containers that stopped (exited, created, dead) more than O(older_than) ago, then images that no
    container uses (running or stopped) and that were created more than O(older_than) ago.
  - Never removes an image of the newest O(keep_releases) good releases of each release ledger of
    M(stackops.runbook.compose_release) (O(release_ledgers)), so a rollback always finds its images.
  - Never touches volumes (named or anonymous) or networks.
  - O(labels) limits both to containers and images with those labels, as C(--filter label=) does.
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
    description: Lists what would be removed and removes nothing.
  diff_mode:
    support: none
    description: The lists of removed objects are returned instead.
options:
  older_than:
    description: Only what stopped (containers) or was created (images) longer ago than this, such as C(7d) or C(36h).
    type: str
    default: 7d
  containers:
    description: Remove stopped containers.
    type: bool
    default: true
  images:
    description: Remove unused images.
    type: bool
    default: true
  labels:
    description: Only containers and images with all these labels (C(key) or C(key=value)).
    type: list
    elements: str
    default: []
  release_ledgers:
    description:
      - Release ledgers whose newest O(keep_releases) good releases' images are kept. Shell-style patterns are expanded.
    type: list
    elements: path
    default: [/var/lib/stackops-runbook/releases/*.jsonl]
  keep_releases:
    description: How many good releases per ledger keep their images.
    type: int
    default: 3
requirements:
  - The Python docker SDK (C(docker)).
seealso:
  - module: stackops.runbook.compose_release
"""

EXAMPLES = r"""
- name: Remove what stopped or went unused more than a week ago, keeping the last 3 releases' images
  stackops.runbook.docker_prune:
    older_than: 7d

- name: Show what would go
  stackops.runbook.docker_prune:
    older_than: 3d
  check_mode: true
"""

RETURN = r"""
containers:
  description: The containers removed (in check mode, that would be), with name, image and when they stopped.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "myapp_migrate_run_1", "id": "3f1c...", "image": "myapp/api:1.4.0", "stopped": "2026-11-01T03:00:12Z"}]
images:
  description: The images removed (in check mode, that would be), with id, tags, size and creation time.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "sha256:9a1b...", "tags": ["myapp/api:1.2.0"], "size": 187000000, "created": "2026-10-02T10:00:00Z"}]
kept_release_images:
  description: Image ids kept because a recent good release in a ledger uses them.
  returned: always
  type: list
  elements: str
  sample: ["sha256:1c3e..."]
reclaimed_bytes:
  description: The sum of the removed images' sizes (layers shared with kept images are not actually freed).
  returned: always
  type: int
  sample: 374000000
"""

import datetime
import glob

from ansible_collections.stackops.runbook.plugins.module_utils import _release
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._docker import (
    docker_argument_spec,
    docker_client,
    docker_errors,
    image_ids_in_use,
    live_containers,
    live_images,
    parse_docker_time,
)


def release_images(patterns, keep):
    """Image ids of the newest ``keep`` good releases of each ledger."""
    kept = set()
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)) or ([pattern] if not glob.has_magic(pattern) else []):
            kept |= _release.kept_image_ids(_release.load_ledger(path), keep)
    return kept


def stopped_containers(client, labels, cutoff):
    found = []
    filters = {"status": ["exited", "created", "dead"], "label": labels}
    for container in live_containers(client, filters, include_stopped=True):
        state = container.attrs.get("State", {})
        stopped = parse_docker_time(state.get("FinishedAt")) or parse_docker_time(container.attrs.get("Created"))
        if stopped and stopped < cutoff:
            found.append((container, stopped))
    return found


def main():
    spec = docker_argument_spec()
    spec.update(
        older_than=dict(type="str", default="7d"),
        containers=dict(type="bool", default=True),
        images=dict(type="bool", default=True),
        labels=dict(type="list", elements="str", default=[]),
        release_ledgers=dict(type="list", elements="path", default=["/var/lib/stackops-runbook/releases/*.jsonl"]),
        keep_releases=dict(type="int", default=3),
    )
    module = RunbookModule(argument_spec=spec, supports_check_mode=True)
    require_libraries(module, docker=True)
    p = module.params
    age = module.seconds("older_than")
    if p["keep_releases"] < 1:
        module.fail_json(msg="keep_releases=%s must be 1 or more: the release serving must keep its images"
                             % p["keep_releases"])
    result = dict(changed=False, containers=[], images=[], kept_release_images=[], reclaimed_bytes=0)
    try:
        client = docker_client(p["docker_host"])
        with docker_errors("docker_prune failed"):
            prune(client, p, module.check_mode, age, result)
    except RunbookError as exc:
        module.fail_from(exc, **result)
    result["changed"] = bool(result["containers"] or result["images"])
    result["kept_release_images"] = sorted(set(result["kept_release_images"]))
    module.exit_json(**result)


def prune(client, p, check_mode, age, result):
    """Remove (in check mode, list) the stopped containers and unused images older than ``age`` seconds."""
    cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=age)
    kept = release_images(p["release_ledgers"], p["keep_releases"])
    removed_ids = set()
    if p["containers"]:
        for container, stopped in stopped_containers(client, p["labels"], cutoff):
            result["containers"].append(dict(name=container.name, id=container.id,
                                             image=container.attrs.get("Config", {}).get("Image"),
                                             stopped=stopped.isoformat(timespec="seconds")))
            removed_ids.add(container.id)
            if not check_mode:
                container.remove(v=False)  # v=False: anonymous volumes stay too
    if p["images"]:
        in_use = image_ids_in_use(client, excluding=removed_ids)
        for image in live_images(client, {"label": p["labels"]} if p["labels"] else None):
            created = parse_docker_time(image.attrs.get("Created"))
            if image.id in in_use or not created or created >= cutoff:
                continue
            if image.id in kept:
                result["kept_release_images"].append(image.id)
                continue
            result["images"].append(dict(id=image.id, tags=image.tags, size=image.attrs.get("Size", 0),
                                         created=created.isoformat(timespec="seconds")))
            result["reclaimed_bytes"] += image.attrs.get("Size", 0)
            if not check_mode:
                # force only drops its other tags: no container uses it (checked above)
                client.images.remove(image.id, force=True)


if __name__ == "__main__":
    main()
