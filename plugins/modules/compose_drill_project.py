#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_drill_project
short_description: Run a throwaway copy of a compose project for a full-stack drill, and sweep it away
version_added: 0.2.0
description:
  - The full-stack restore drill (the restore_drill role's C(restore_drill_stack)) boots the app against restored
    data next to production, on the same docker engine. This module runs a copy of the project that shares nothing
    with it - from the copy's resolved configuration (C(compose config)) it writes C(.stackops-drill.compose.yml)
    where fixed container names are gone (compose names the containers for O(project_name)), named and external
    volumes and networks are the drill's own, published ports are ephemeral ports on 127.0.0.1 (no clash with
    production's), and bind mounts from outside O(project_src) are read-only.
  - O(state=present) creates every container, network and volume of the copy without starting them (so restores
    can fill the volumes first), then starts O(services) (C(up -d --no-deps --no-recreate)). It returns the
    containers, the volumes and the ports docker picked.
  - O(state=absent) removes every container, network and volume labelled as a drill of O(drill_of) - the copy of
    this run, and what a killed run left.
requirements:
  - docker compose (v2) or docker-compose (v1) on the managed host.
  - The Python docker SDK (C(docker)) and PyYAML.
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_docker
attributes:
  check_mode:
    support: none
    description: A drill's copy exists only to be run.
  diff_mode:
    support: none
    description: Nothing of production is changed.
options:
  state:
    description: C(present) makes and starts the copy; C(absent) removes every drill copy of O(drill_of).
    type: str
    choices: [present, absent]
    default: present
  drill_of:
    description: The name of the production compose project the copy is of (a label on everything the copy owns).
    type: str
    required: true
  project_src:
    description: The folder of the copy (where the config backup was restored). Required with O(state=present).
    type: path
  files:
    description: The compose files of the copy, relative to O(project_src); default compose's own defaults.
    type: list
    elements: path
  project_name:
    description: The copy's compose project name, such as C(drill-1a2b3c4d). Required with O(state=present).
    type: str
  services:
    description: The services to start with O(state=present); [] creates everything and starts nothing.
    type: list
    elements: str
    default: []
seealso:
  - module: stackops.runbook.restore_drill
"""

EXAMPLES = r"""
- name: Start the copy's database only
  stackops.runbook.compose_drill_project:
    project_src: /tmp/drill/srv/app
    project_name: drill-1a2b3c4d
    drill_of: app
    services: [postgres]
  register: drill_project

- name: Remove the copy (and any a killed drill left)
  stackops.runbook.compose_drill_project:
    drill_of: app
    state: absent
"""

RETURN = r"""
containers:
  description: The running containers of each service of the copy.
  returned: with state=present
  type: dict
  sample: {"postgres": ["drill-1a2b3c4d_postgres_1"]}
ports:
  description: The loopback host port of each published container port, per service.
  returned: with state=present
  type: dict
  sample: {"proxy": {"8080": 49153}}
volumes:
  description: Each named volume of the project - C(key) in the compose file, C(source) the production volume, C(drill) the copy's.
  returned: with state=present
  type: list
  elements: dict
  sample: [{"key": "uploads", "source": "app-uploads", "drill": "drill-1a2b3c4d_uploads"}]
services:
  description: Every service of the project.
  returned: with state=present
  type: list
  elements: str
rendered_file:
  description: The copy's compose file the module wrote.
  returned: with state=present
  type: str
changes:
  description: What the copy does differently from the project, in sentences.
  returned: with state=present
  type: list
  elements: str
removed:
  description: The containers, networks and volumes removed.
  returned: with state=absent
  type: list
  elements: str
"""

import os

from ansible_collections.stackops.runbook.plugins.module_utils import _drill_project as dp
from ansible_collections.stackops.runbook.plugins.module_utils._compose import ComposeError, ComposeProject, replace_file
from ansible_collections.stackops.runbook.plugins.module_utils._docker import (
    docker_argument_spec,
    docker_client,
    docker_errors,
    live_containers,
)
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries


def source_volume_names(config, source_project):
    return {key: (item or {}).get("name") or "%s_%s" % (source_project, key)
            for key, item in (config.get("volumes") or {}).items()}


def present(module, client):
    import yaml
    p = module.params
    source = ComposeProject(module, client, p["project_src"], p["files"], p["project_name"], None, p["docker_host"])
    config = yaml.safe_load(source.run(["config"], what="reading the copy's compose files")) or {}
    rendered, changes = dp.drill_config(config, p["drill_of"], source.project_dir)
    path = os.path.join(source.project_dir, dp.RENDERED_FILE)
    replace_file(path, yaml.safe_dump(rendered, default_flow_style=False, sort_keys=True), mode=0o600)
    copy = ComposeProject(module, client, source.project_dir, [path], p["project_name"], None, p["docker_host"])
    unknown = [s for s in p["services"] if s not in (rendered.get("services") or {})]
    if unknown:
        raise ComposeError("unknown service %s: the project defines %s" % (
            ", ".join(unknown), ", ".join(sorted(rendered.get("services") or {}))))
    copy.run(["up", "--no-start"], what="creating the drill's copy")
    if p["services"]:
        copy.run(["up", "-d", "--no-deps", "--no-recreate"] + p["services"],
                 what="starting %s in the drill's copy" % ", ".join(p["services"]))
    containers, ports = {}, {}
    with docker_errors("cannot inspect the drill's containers"):
        for service in rendered.get("services") or {}:
            running = copy.containers(service)
            if running:
                containers[service] = [c.name for c in running]
                ports[service] = dp.published_ports(running[0])
    sources = source_volume_names(config, p["drill_of"])
    volumes = [dict(key=key, source=sources[key], drill="%s_%s" % (p["project_name"], key)) for key in sorted(sources)]
    return dict(changed=True, containers=containers, ports=ports, volumes=volumes, changes=changes,
                services=sorted(rendered.get("services") or {}), rendered_file=path)


def absent(module, client):
    label = "%s=%s" % (dp.DRILL_OF_LABEL, module.params["drill_of"])
    removed = []
    with docker_errors("cannot remove the drill copies of %s" % module.params["drill_of"]):
        projects = set()
        for container in live_containers(client, {"label": label}, include_stopped=True):
            projects.add(container.labels.get("com.docker.compose.project"))
            container.remove(force=True, v=True)
            removed.append("container " + container.name)
        # by the drill's label, and by the compose project of its containers (what a copy rendered before its
        # networks were labelled left behind)
        filters = [{"label": label}] + [{"label": "com.docker.compose.project=%s" % p} for p in sorted(projects) if p]
        for kind, listing in (("network", client.networks.list), ("volume", client.volumes.list)):
            seen = set()
            for found in filters:
                for item in listing(filters=found):
                    if item.name in seen:
                        continue
                    seen.add(item.name)
                    if kind == "volume":
                        item.remove(force=True)
                    else:
                        item.remove()
                    removed.append("%s %s" % (kind, item.name))
    return dict(changed=bool(removed), removed=removed)


def main():
    spec = dict(
        state=dict(type="str", choices=["present", "absent"], default="present"),
        drill_of=dict(type="str", required=True),
        project_src=dict(type="path"),
        files=dict(type="list", elements="path"),
        project_name=dict(type="str"),
        services=dict(type="list", elements="str", default=[]),
    )
    spec.update(docker_argument_spec())
    module = RunbookModule(argument_spec=spec, required_if=[("state", "present", ("project_src", "project_name"))])
    p = module.params
    if p["state"] == "present" and p["project_name"] == p["drill_of"]:
        module.fail_json(msg="project_name is the production project's own name (%s): give the copy a name of its own, "
                             "such as drill-1a2b3c4d" % p["drill_of"])
    require_libraries(module, docker=True, yaml=p["state"] == "present")
    try:
        client = docker_client(p["docker_host"])
        result = present(module, client) if p["state"] == "present" else absent(module, client)
    except RunbookError as exc:
        module.fail_from(exc, "the drill's copy of %s" % p["drill_of"])
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
