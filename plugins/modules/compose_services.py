#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_services
short_description: Stop, start or restart services of a docker compose project, or run a one-off command in one
version_added: 0.2.0
description:
  - The runbooks' C(docker compose stop api worker), C(docker compose start ...), C(docker compose restart ...) and
    C(docker compose run --rm api ./migrate), through C(docker compose) (v2) or C(docker-compose) (v1), whichever
    the managed host has, so that a playbook or role never builds compose command lines itself.
  - O(state=stopped), O(state=started) and O(state=present) act only on the services that are not so already and
    return which they changed; O(state=restarted) always restarts.
  - O(run) starts a one-off container of a service (C(run --rm --no-deps -T)), waits for it and returns its exit
    code and output; the task fails when the command exits non-zero (C(failed_when) can accept that, the result
    keeps O(run) C(rc), C(stdout) and C(stderr)).
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.compose
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
    description: Says which services would be stopped, started or restarted and changes nothing; O(run) is skipped.
  diff_mode:
    support: none
    description: What changes is a service's state; the result names the services.
options:
  services:
    description:
      - The services to stop, start or restart, such as C([api, worker]). Required (not empty) with O(state).
      - Every one must be a service of the project (the task fails naming those that are not, before anything).
    type: list
    elements: str
  state:
    description:
      - C(stopped) stops the running containers of O(services) (they stay, to be started again).
      - C(started) starts the stopped containers of O(services); a service without a container fails the task
        (it was never deployed; use M(stackops.runbook.compose_release)).
      - C(restarted) restarts the containers of O(services).
      - C(present) also creates the containers of O(services) that have none, from the compose file as it is
        (C(up -d --no-deps --no-recreate)), and starts stopped ones; running containers are left as they are. This
        is how a new server gets its database or proxy container; the app's own services get theirs from
        M(stackops.runbook.compose_release), pinned to a release.
      - One of O(state) and O(run) is required.
    type: str
    choices: [stopped, started, restarted, present]
  run:
    description: A command to run in a one-off container of a service, removed afterwards.
    type: dict
    suboptions:
      service:
        description: The service whose image, networks, volumes and environment the container gets.
        type: str
        required: true
      command:
        description: The command and its arguments, as a list (no shell); default the service's own command.
        type: list
        elements: str
        default: []
      environment:
        description:
          - Variables set in the container. Their values go to compose through its environment and the container
            by name (C(-e NAME)), so they appear in no command line.
        type: dict
        default: {}
  variables:
    description:
      - Variables compose interpolates in the compose files for this command, over the env file's (such as
        C(APP_VERSION) to run a release's image before the env file says so).
    type: dict
    default: {}
seealso:
  - module: stackops.runbook.compose_release
"""

EXAMPLES = r"""
- name: Stop the services that write, for a restore
  stackops.runbook.compose_services:
    project_src: /srv/app
    services: [api, worker]
    state: stopped

- name: Run the migrations of release 1.4.0 in a one-off container
  stackops.runbook.compose_services:
    project_src: /srv/app
    run:
      service: api
      command: [npm, run, migrate]
      environment:
        PGOPTIONS: -c lock_timeout=5s
    variables:
      APP_VERSION: 1.4.0
  register: migration

- name: Start them again
  stackops.runbook.compose_services:
    project_src: /srv/app
    services: [api, worker]
    state: started
"""

RETURN = r"""
cmd:
  description: The compose command line (variable values are not in it).
  returned: always
  type: list
  elements: str
  sample: [docker-compose, -p, app, -f, /srv/app/docker-compose.yml, stop, api]
changed_services:
  description: The services stopped, started or restarted (or that would be, in check mode).
  returned: with O(state)
  type: list
  elements: str
  sample: [api, worker]
rc:
  description: The exit code of the O(run) command.
  returned: with O(run), unless skipped in check mode
  type: int
  sample: 0
stdout:
  description: What the O(run) command printed.
  returned: with O(run), unless skipped in check mode
  type: str
stdout_lines:
  description: O(run) C(stdout), line by line.
  returned: with O(run), unless skipped in check mode
  type: list
  elements: str
stderr:
  description: The O(run) command's error output (with compose's own messages).
  returned: with O(run), unless skipped in check mode
  type: str
duration:
  description: Seconds the module ran.
  returned: always
  type: float
"""

from ansible_collections.stackops.runbook.plugins.module_utils._compose import (
    ComposeError,
    ComposeProject,
    compose_argument_spec,
)
from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_client
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries

# compose's own verb for each state, and whether a service's container is already so
VERBS = {"stopped": "stop", "started": "start", "restarted": "restart", "present": "up"}
# what each verb runs; present creates only what is missing and never a dependency the caller did not name
ARGS = {"present": ["up", "-d", "--no-deps", "--no-recreate"]}


def argument_spec():
    spec = compose_argument_spec()
    spec.update(
        services=dict(type="list", elements="str"),
        state=dict(type="str", choices=list(VERBS)),
        run=dict(type="dict", options=dict(
            service=dict(type="str", required=True),
            command=dict(type="list", elements="str", default=[]),
            environment=dict(type="dict", default={}, no_log=True),
        )),
        variables=dict(type="dict", default={}),
    )
    return spec


def change_services(module, project, state, services):
    """Stop, start or restart ``services``; the result names those that changed."""
    if state == "restarted":
        changing = list(services)
    else:
        running = {s: bool(project.containers(s)) for s in services}
        if state == "started":
            never = [s for s in services if not running[s] and not project.containers(s, running_only=False)]
            if never:
                raise ComposeError("service %s of project %s has no container to start: it was never deployed "
                                   "(use stackops.runbook.compose_release), so nothing was started"
                                   % (", ".join(never), project.name))
        changing = [s for s in services if running[s] == (state == "stopped")]
    args = ARGS.get(state, [VERBS[state]]) + changing
    argv = project.argv(args)
    if changing and not module.check_mode:
        project.run(args, environ=module.params["variables"], what="%s %s" % (VERBS[state], ", ".join(changing)))
    return dict(changed=bool(changing), changed_services=changing, cmd=argv)


def run_once(module, project, run):
    """Run ``run``'s command in a one-off container; fails the task (with the output) when it exits non-zero."""
    environ = dict(module.params["variables"], **{k: str(v) for k, v in run["environment"].items()})
    if not module.get_bin_path("docker"):
        # docker-compose v1 attaches to a one-off container with the docker CLI; without one, through the API
        # (which can miss the output of a command that ends at once, so only then)
        environ["COMPOSE_INTERACTIVE_NO_CLI"] = "1"
    args = ["run", "--rm", "--no-deps", "-T"]
    for name in run["environment"]:
        args += ["-e", name]
    args += [run["service"]] + run["command"]
    argv = project.argv(args)
    if module.check_mode:
        return dict(changed=False, skipped=True, cmd=argv, msg="the command runs only outside check mode")
    rc, out, err = project.run(args, environ=environ, check=False)
    result = dict(changed=True, cmd=argv, rc=rc, stdout=out, stdout_lines=out.splitlines(), stderr=err)
    if rc != 0:
        raise ComposeError("the command in a one-off container of %s exited with %d: %s" % (
            run["service"], rc, (err or out).strip()[-2000:] or "no output"), result)
    return result


def main():
    module = RunbookModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[("state", "run")], mutually_exclusive=[("state", "run")])
    p = module.params
    if p["state"] and not p["services"]:
        module.fail_json(msg="services is empty: name the services to %s, such as [api, worker] (compose itself "
                             "would take every service of the project)" % VERBS[p["state"]])
    require_libraries(module, docker=True)
    try:
        project = ComposeProject(module, docker_client(p["docker_host"]), p["project_src"], p["files"],
                                 p["project_name"], p["env_file"], p["docker_host"])
        wanted = list(p["services"] or []) + ([p["run"]["service"]] if p["run"] else [])
        defined = project.services()
        unknown = [s for s in wanted if s not in defined]
        if unknown:
            raise ComposeError("unknown service %s: the compose project %s defines %s, so nothing was done" % (
                ", ".join(unknown), project.name, ", ".join(defined)))
        if p["run"]:
            result = run_once(module, project, p["run"])
        else:
            result = change_services(module, project, p["state"], p["services"])
    except RunbookError as exc:
        module.fail_from(exc)
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
