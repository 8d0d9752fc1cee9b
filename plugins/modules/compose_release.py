#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_release
short_description: Deploy a version of docker compose services behind a health gate, and roll back by itself
version_added: 0.1.0
description:
  - The runbooks' C(git pull && docker compose up -d), then curl the health endpoint and hope - done so users are
    never left on a broken release.
  - "The version goes in through a variable of the project's env file (O(version_variable), such as
    C(image: myapp:${APP_VERSION}) in the compose file) or an image per service (O(images)). Images are pulled
    when missing (O(pull)) or built (O(build)); then the listed services are switched with O(strategy)."
  - C(recreate) stops the old containers and starts the new ones. C(start-first) starts the new containers
    beside the old ones, waits until they are healthy, then stops the old ones, so a reverse proxy that
    resolves the service by name always has a healthy container to send requests to (the service must not
    have a C(container_name) or a fixed host port).
  - "The health gate: the new containers run (and are healthy when their image has a healthcheck) and every
    check of O(health_checks) passes (health_probe's checks; warnings do not block), within O(health_timeout);
    then for O(monitor) seconds a check that fails still fails the release."
  - When the gate fails the services go back to the last good release from the ledger, started from the image
    ids recorded for it (not from a tag, which may have moved), and that is checked for health too. The task
    then fails, saying whether the old release serves again.
  - "Every attempt is a JSON line in the release ledger on the host (O(ledger_path)): version, image ids and
    digests, the compose files' sha256, who, when, the result and the health summary. The first deploy on a
    project records what runs as an C(adopt) release, so there is something to roll back to."
  - O(state=rolled_back) goes back to the previous good release or a named O(to) version from the ledger; it
    checks first that the release's images are still on the host (or pullable by digest) and changes nothing
    when they are not.
  - Images of good releases older than the newest O(keep_releases) are removed after a good deploy, unless a
    container uses them.
  - One deploy per compose project at a time on a host (a lock in C(/run/lock) named for the project, whatever
    O(ledger_path) says). Every attempt writes a C(started) line before it changes anything, so the next run
    finds one that was killed, removes what it left and records it as C(interrupted).
  - Deploying the version that already runs changes nothing. The project's env file says the version that serves;
    it gets the new version when the new containers take over (with C(start-first), once they passed the gate),
    and the previous one back when the release is rolled back.
  - Works with C(docker compose) (v2) and C(docker-compose) (v1), whichever the host has.
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.compose
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
    description: Returns the plan (services, the version and image ids from and to) and changes nothing.
  diff_mode:
    support: none
    description: The plan is returned instead.
options:
  state:
    description:
      - C(present) deploys O(version); C(rolled_back) goes back to the release named by O(to).
    type: str
    choices: [present, rolled_back]
    default: present
  services:
    description:
      - The compose services to deploy, such as C([api, worker]). Required with O(state=present).
      - With O(state=rolled_back) default is the services of the last good release in the ledger.
    type: list
    elements: str
  version:
    description:
      - The version to deploy (letters, digits, C(.), C(_), C(+) and C(-), as an image tag). Written to
        O(version_variable) in the env file once the release is good, and recorded in the ledger.
      - Required with O(state=present).
    type: str
  version_variable:
    description: The env file variable the compose file takes the version from.
    type: str
    default: APP_VERSION
  images:
    description:
      - "Image references per service that override the compose file's, such as C({api: registry.example.com/api:1.5.0})."
    type: dict
    default: {}
  to:
    description:
      - With O(state=rolled_back), C(previous) (the good release before the one serving), C(last_good) (the newest
        good release, whether it serves or not; on a new server whose ledger came back with the config backup, the
        release that served last) or a version from the ledger.
    type: str
    default: previous
  pull:
    description:
      - C(missing) pulls images that are not on the host, C(always) pulls every deploy, C(never) only uses local images.
      - A rollback pulls a release's image by its recorded digest when it is gone, unless C(never).
    type: str
    choices: [missing, always, never]
    default: missing
  build:
    description: Run C(compose build) for the services first (images built on this host).
    type: bool
    default: false
  strategy:
    description: How to switch, see the description.
    type: str
    choices: [recreate, start-first]
    default: recreate
  health_checks:
    description:
      - Checks of M(stackops.runbook.health_probe) (same keys) that must pass before the release counts as good,
        such as the app's readiness URL through the reverse proxy and C(/api/version) with the new version.
      - The new containers themselves are always checked.
    type: list
    elements: dict
    default: []
  version_url:
    description:
      - A URL answering JSON with the running version, such as C(http://127.0.0.1:8080/api/version) through the
        reverse proxy. Each release's gate (and a rollback's) then also checks that the app answers with that
        release's version in O(version_field) - once only that release serves (after the switch with C(start-first)).
    type: str
  version_field:
    description: The jmespath expression of the version in the answer of O(version_url).
    type: str
    default: version
  health_timeout:
    description: Seconds to wait for the new release to become healthy.
    type: int
    default: 120
  health_interval:
    description: Seconds between two rounds of checks.
    type: float
    default: 2
  monitor:
    description: Seconds after the switch during which a failing check still fails (and rolls back) the release.
    type: int
    default: 10
  rollback_on_failure:
    description: Go back to the last good release when the gate fails. Without it a failed release is left running.
    type: bool
    default: true
  keep_releases:
    description: Keep the images of this many good releases (the newest ones); older releases' images are removed.
    type: int
    default: 3
  stop_timeout:
    description: Seconds an old container gets to finish its requests after SIGTERM before it is killed.
    type: int
    default: 10
  lock_timeout:
    description: Seconds to wait for another deploy of the same project to finish before failing.
    type: int
    default: 0
  actor:
    description: Who deploys, for the ledger (the roles pass the AWX or Semaphore user). Default the login name.
    type: str
  ledger_path:
    description: The release ledger (JSON lines); default C(/var/lib/stackops-runbook/releases/PROJECT.jsonl).
    type: path
seealso:
  - module: stackops.runbook.health_probe
  - module: stackops.runbook.migration_guard
"""

EXAMPLES = r"""
- name: Deploy api and worker 1.5.0, the new containers beside the old ones until healthy
  stackops.runbook.compose_release:
    project_src: /srv/myapp
    services: [api, worker]
    version: 1.5.0
    strategy: start-first
    health_checks:
      - {name: ready, type: http, url: "https://myapp.example.com/health/ready"}
      - {name: version, type: http, url: "https://myapp.example.com/api/version", json: {version: 1.5.0}}
    monitor: 30

- name: Show what a deploy would change
  stackops.runbook.compose_release:
    project_src: /srv/myapp
    services: [api]
    version: 1.5.1
  check_mode: true
  register: plan

- name: Roll back to the release before the one serving
  stackops.runbook.compose_release:
    project_src: /srv/myapp
    state: rolled_back

- name: Roll back to a named release
  stackops.runbook.compose_release:
    project_src: /srv/myapp
    state: rolled_back
    to: 1.4.2
"""

RETURN = r"""
version:
  description: The version serving when the task ended successfully (the deployed or rolled-back-to one).
  returned: success
  type: str
  sample: 1.5.0
previous_version:
  description: The version that served before.
  returned: when known
  type: str
  sample: 1.4.2
services:
  description: The services switched.
  returned: always
  type: list
  elements: str
  sample: [api, worker]
plan:
  description: Services, versions and image ids from and to, and the strategy.
  returned: always
  type: dict
  sample: {"services": ["api"], "from_version": "1.4.2", "to_version": "1.5.0", "strategy": "start-first",
           "images": {"api": {"from": ["sha256:1c3e..."], "to": "sha256:9f2a...", "ref": "myapp/api:1.5.0"}}}
health:
  description: The last round of health checks (status, summary, checks).
  returned: when a release was started
  type: dict
  sample: {"status": "healthy", "summary": "healthy: 3/3 checks pass", "checks": []}
rolled_back:
  description: Whether the services were put back on the last good release after a failed gate.
  returned: always
  type: bool
  sample: false
serving_version:
  description: After a failed deploy, the version serving again (null when no healthy release could be put back).
  returned: on failure after an attempt
  type: str
  sample: 1.4.2
ledger_entry:
  description: The line written to the release ledger for this attempt.
  returned: when something was attempted
  type: dict
  sample: {"action": "deploy", "version": "1.5.0", "result": "succeeded", "images": {}, "compose_sha256": "ab12..."}
ledger_path:
  description: The release ledger.
  returned: always
  type: str
  sample: /var/lib/stackops-runbook/releases/myapp.jsonl
pruned_images:
  description: Image references removed because their releases are older than O(keep_releases).
  returned: always
  type: list
  elements: str
  sample: ["myapp/api:1.2.0"]
recovered:
  description:
    - What this run cleaned up after earlier runs that were killed before they finished (a cancelled job, a
      lost connection) - their work folders, the new containers of an unfinished start-first switch, and the
      env file set to the version that serves. Each such attempt gets an C(interrupted) line in the ledger.
  returned: when an earlier run was interrupted
  type: dict
  sample:
    interrupted: [{"attempt": "3f2a9c1b7d0e", "message": "deploy 1.1.0 was interrupted ...", "removed_containers": ["app-api-2"]}]
    swept_workdirs: [".stackops-release.x1y2"]
"""

import getpass
import os
import re
import tempfile
import time
import uuid

from ansible_collections.stackops.runbook.plugins.module_utils import _health, _lock
from ansible_collections.stackops.runbook.plugins.module_utils import _release as rel
from ansible_collections.stackops.runbook.plugins.module_utils._compose import (
    ComposeError,
    ComposeProject,
    compose_argument_spec,
    read_env_file,
)
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_client, docker_errors


def running_ids(project, services):
    return {s: sorted(c.attrs["Image"] for c in project.containers(s)) for s in services}


def is_serving(running, release, services):
    return all(running[s] and set(running[s]) == {release["images"][s]["id"]} for s in services)


def target_release(module, project, deployer):
    """The release to deploy: image reference and id per service, pulled or built as asked."""
    p = module.params
    services = p["services"]
    env = {p["version_variable"]: p["version"]}
    env_path = project.pinned_env(env, deployer.workdir)
    refs = project.service_images([s for s in services if s not in p["images"]], env_file=env_path)
    refs.update({s: p["images"][s] for s in services if s in p["images"]})
    will_fetch = []
    if not module.check_mode and p["build"]:
        project.run(["build"] + services, env_path, what="compose build")
    for service in services:
        if p["pull"] == "always" or (p["pull"] == "missing" and project.image_id(refs[service]) is None):
            will_fetch.append(service)
            if not module.check_mode:
                pull(project, refs[service], service)
    ids = {s: project.image_id(refs[s]) for s in services}
    missing = [s for s in services if ids[s] is None and not (module.check_mode and s in will_fetch)]
    if missing:
        raise ComposeError("no image for %s on this host (%s): build it, push it where pull can reach it, or fix "
                           "version/images" % (", ".join(missing), ", ".join(refs[s] for s in missing)))
    client = project.client
    return dict(version=p["version"], env=env, services=services,
                images={s: rel.image_record(client, refs[s], ids[s]) for s in services}), will_fetch


def pull(project, reference, service):
    with docker_errors("cannot pull %s for %s" % (reference, service)):
        project.client.images.pull(reference)


def plan_of(release, running, current_version, strategy):
    return dict(services=release["services"], from_version=current_version, to_version=release["version"],
                strategy=strategy, images={s: {"from": running[s], "to": release["images"][s]["id"],
                                               "ref": release["images"][s]["ref"]} for s in release["services"]})


def put_back(deployer, release):
    """After a failed switch: make ``release`` serve again (it may still be, with start-first) and say
    whether it answers healthy. Returns (serving, summary)."""
    services = release["services"]
    try:
        if is_serving(running_ids(deployer.project, services), release, services):
            result = deployer.verify(release)
        else:
            result = deployer.switch(release, 0)
        return True, result["summary"]
    except RunbookError as exc:
        return False, str(exc)


def attempt(module, project, deployer, action, release, previous, plan):
    """Switch to ``release``; on a failed gate put ``previous`` back. Record the attempt in the ledger and
    return the result, or raise ReleaseFailed."""
    p = module.params
    started = time.monotonic()
    ledger = ledger_path(p, project)
    entry = dict(action=action, attempt=uuid.uuid4().hex[:12], version=release["version"],
                 env=release.get("env", {}), services=release["services"], images=release["images"],
                 previous_version=previous["version"] if previous else None,
                 compose_sha256=project.files_sha256(), project=project.name, strategy=p["strategy"],
                 actor=p["actor"] or getpass.getuser())
    # written before anything changes, so a run killed halfway is in the ledger and the next run can clean up
    entry.update(previous_env=previous.get("env") if previous else None,
                 previous_images={s: previous["images"][s]["id"] for s in release["services"]} if previous else {})
    rel.record(ledger, dict(entry, result="started"))

    def switched(serving):
        # the env file and the ledger say what serves as soon as it serves (also during the monitor window)
        if serving.get("env"):
            project.write_env(serving["env"])
        rel.record(ledger, dict(entry, result="switched", serving_version=serving["version"]))
    deployer.on_switched = switched
    try:
        health = deployer.switch(release, p["monitor"])
    except RunbookError as exc:
        health = getattr(exc, "result", {})
        serving, summary = False, "no rollback asked (rollback_on_failure=false)"
        if previous is None:
            summary = "no good release to go back to"
        elif p["rollback_on_failure"]:
            serving, summary = put_back(deployer, previous)
        result_word = "rolled_back" if serving else ("rollback_failed" if previous and p["rollback_on_failure"]
                                                     else "failed")
        entry = rel.record(ledger_path(p, project), dict(
            entry, result=result_word, message=str(exc), health=health.get("summary"),
            rollback=dict(to=previous["version"] if previous else None, serving=serving, summary=summary),
            duration_seconds=rel.elapsed(started)))
        if serving:
            message = ("%s %s of %s failed: %s. Rolled back: %s serves again (%s)." % (
                action, release["version"], ", ".join(release["services"]), exc, previous["version"], summary))
        else:
            message = ("%s %s of %s failed: %s. THE PREVIOUS RELEASE IS NOT SERVING: %s. Look at the services now "
                       "(compose ps, logs) and roll back by hand (state=rolled_back)." % (
                           action, release["version"], ", ".join(release["services"]), exc, summary))
        raise rel.ReleaseFailed(message, dict(
            changed=True, rolled_back=serving, serving_version=previous["version"] if serving else None,
            health=health, ledger_entry=entry, plan=plan, services=release["services"]))
    entry = rel.record(ledger_path(p, project), dict(
        entry, result=rel.GOOD, health=health.get("summary"), duration_seconds=rel.elapsed(started)))
    pruned = deployer.prune(rel.load_ledger(ledger_path(p, project)), p["keep_releases"])
    return dict(changed=True, version=release["version"], previous_version=entry["previous_version"],
                services=release["services"], plan=plan, health=health, rolled_back=False, ledger_entry=entry,
                pruned_images=pruned)


def recover_interrupted(project, deployer, ledger):
    """Clean up after deploys that were killed before they finished: their work folders, the new containers
    of a start-first switch that never completed (the old ones still run), and an env file that does not say
    what serves. Each is recorded in the ledger as ``interrupted``. Returns what was done (or {})."""
    swept = deployer.sweep_workdirs()
    recovered = dict(swept_workdirs=swept) if swept else {}
    for attempt in rel.unfinished_attempts(rel.load_ledger(ledger)):
        services = attempt.get("services") or []
        previous_ids = attempt.get("previous_images") or {}
        removed = []
        for service in services:
            containers = project.containers(service, running_only=False)
            keep_id = previous_ids.get(service)
            if keep_id and any(c.attrs["Image"] == keep_id and c.status == "running" for c in containers):
                extra = [c for c in containers if c.attrs["Image"] != keep_id]
                deployer.remove(extra)
                removed += [c.name for c in extra]
        running = running_ids(project, services)
        serving = None
        if attempt.get("images") and is_serving(running, attempt, services):
            serving = dict(version=attempt["version"], env=attempt.get("env"))
        elif previous_ids and all(running.get(s) and set(running[s]) == {previous_ids.get(s)} for s in services):
            serving = dict(version=attempt.get("previous_version"), env=attempt.get("previous_env"))
        if serving and serving.get("env"):
            project.write_env(serving["env"])
        message = ("%s %s was interrupted (the run was killed before it finished); %s%s" % (
            attempt.get("action"), attempt.get("version"),
            "removed its new containers %s; " % ", ".join(removed) if removed else "",
            "%s serves" % serving["version"] if serving else "what serves matches no release of this attempt"))
        rel.record(ledger, dict(attempt, result="interrupted", removed_containers=removed,
                                serving_version=serving["version"] if serving else None, message=message))
        recovered.setdefault("interrupted", []).append(dict(attempt=attempt["attempt"], message=message,
                                                            removed_containers=removed))
    return recovered


def project_lock_path(project):
    """One lock per compose project on this host, whatever ledger_path says: two deploys of one project never
    interleave. /run/lock is cleared at boot, like the lock itself."""
    directory = "/run/lock" if os.path.isdir("/run/lock") and os.access("/run/lock", os.W_OK) else \
        tempfile.gettempdir()
    return os.path.join(directory, "stackops-runbook-compose-%s.lock" % re.sub(r"[^A-Za-z0-9_.-]", "_", project.name))


def ledger_path(params, project):
    return params["ledger_path"] or "/var/lib/stackops-runbook/releases/%s.jsonl" % project.name


def adopt_running(module, project, entries, services, current_version):
    """The first deploy on a project: record what runs as a good release, so a failed deploy has somewhere to go."""
    running = {s: project.containers(s) for s in services}
    if rel.good_releases(entries, services) or not all(running.values()):
        return entries
    images = {s: rel.image_record(project.client, running[s][0].attrs["Config"]["Image"], running[s][0].attrs["Image"])
              for s in services}
    # no version in the env file (the compose file's default applies): the running image's tag says which
    version = current_version or rel.tag_of(images[services[0]]["ref"])
    env = {module.params["version_variable"]: version} if version else {}
    entry = rel.record(ledger_path(module.params, project), dict(
        action="adopt", result=rel.GOOD, version=version or "unknown", env=env, services=services,
        images=images, compose_sha256=project.files_sha256(), project=project.name,
        actor=module.params["actor"] or getpass.getuser(), message="the release running before the first deploy"))
    return entries + [entry]


def deploy(module, project, deployer):
    p = module.params
    services = p["services"]
    current_version = read_env_file(project.env_file)[0].get(p["version_variable"])
    release, fetch = target_release(module, project, deployer)
    running = running_ids(project, services)
    plan = plan_of(release, running, current_version, p["strategy"])
    common = dict(services=services, plan=plan, rolled_back=False, pruned_images=[],
                  ledger_path=ledger_path(p, project))
    if current_version == p["version"] and is_serving(running, release, services):
        return dict(common, changed=False, version=p["version"], previous_version=current_version,
                    msg="%s already runs %s: nothing to do" % (", ".join(services), p["version"]))
    if module.check_mode:
        return dict(common, changed=True, version=p["version"], previous_version=current_version,
                    msg="check mode: would deploy %s of %s (%s, from %s)%s" % (
                        p["version"], ", ".join(services), p["strategy"], current_version or "unknown",
                        "; would pull %s" % ", ".join(fetch) if fetch else ""))
    entries = adopt_running(module, project, rel.load_ledger(ledger_path(p, project)), services, current_version)
    good = rel.good_releases(entries, services)
    result = attempt(module, project, deployer, "deploy", release, good[0] if good else None, plan)
    return dict(common, **result)


def ensure_images(module, project, release):
    """Before a rollback touches anything: every image of ``release`` is here, or pulled by its digest."""
    for service in release["services"]:
        image = release["images"][service]
        if project.image_id(image["id"]):
            continue
        if module.params["pull"] != "never" and image.get("digests"):
            if not module.check_mode:
                pull(project, image["digests"][0], service)
                if project.image_id(image["id"]):
                    continue
            else:
                continue
        raise ComposeError("cannot roll back to %s: the image of %s (%s, %s) is no longer on this host and has no "
                           "registry digest to pull it by. Nothing was changed. Rebuild or pull %s, or roll back to "
                           "another version." % (release["version"], service, image["ref"], image["id"], image["ref"]))


def roll_back(module, project, deployer):
    p = module.params
    entries = rel.load_ledger(ledger_path(p, project))
    services = p["services"]
    if not services:
        newest = next((e for e in reversed(entries) if e.get("result") == rel.GOOD), None)
        if newest is None:
            raise ComposeError("the release ledger %s has no good release: nothing to roll back to"
                               % ledger_path(p, project))
        services = newest["services"]
    running = running_ids(project, services)
    target = rel.pick_rollback_target(entries, services, p["to"], running)
    release = dict(target, services=services, images={s: target["images"][s] for s in services})
    ensure_images(module, project, release)
    current_version = read_env_file(project.env_file)[0].get(p["version_variable"])
    plan = plan_of(release, running, current_version, p["strategy"])
    common = dict(services=services, plan=plan, rolled_back=False, pruned_images=[],
                  ledger_path=ledger_path(p, project))
    if is_serving(running, release, services) and current_version == release.get("env", {}).get(
            p["version_variable"], current_version):
        return dict(common, changed=False, version=release["version"],
                    msg="%s already runs %s: nothing to do" % (", ".join(services), release["version"]))
    if module.check_mode:
        return dict(common, changed=True, version=release["version"], previous_version=current_version,
                    msg="check mode: would roll %s back to %s" % (", ".join(services), release["version"]))
    # what runs now, if it is a release the ledger knows as good: the one to put back if the rollback fails
    serving = next((e for e in rel.good_releases(entries, services) if is_serving(running, e, services)), None)
    return dict(common, **attempt(module, project, deployer, "rollback", release, serving, plan))


def main():
    argument_spec = compose_argument_spec()
    argument_spec.update(
        state=dict(type="str", choices=["present", "rolled_back"], default="present"),
        services=dict(type="list", elements="str"),
        version=dict(type="str"),
        version_variable=dict(type="str", default="APP_VERSION"),
        images=dict(type="dict", default={}),
        to=dict(type="str", default="previous"),
        pull=dict(type="str", choices=["missing", "always", "never"], default="missing"),
        build=dict(type="bool", default=False),
        strategy=dict(type="str", choices=["recreate", "start-first"], default="recreate"),
        health_checks=dict(type="list", elements="dict", default=[]),
        version_url=dict(type="str"),
        version_field=dict(type="str", default="version"),
        health_timeout=dict(type="int", default=120),
        health_interval=dict(type="float", default=2),
        monitor=dict(type="int", default=10),
        rollback_on_failure=dict(type="bool", default=True),
        keep_releases=dict(type="int", default=3),
        stop_timeout=dict(type="int", default=10),
        lock_timeout=dict(type="int", default=0),
        actor=dict(type="str"),
        ledger_path=dict(type="path"),
    )
    module = RunbookModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ("version", "services"))])
    require_libraries(module, docker=True, yaml=True)
    p = module.params
    # checks are free-form dicts, so no_log cannot reach a password inside one: mask it in every result
    module.no_log_values.update(_health.secrets(dict(checks=p["health_checks"])))
    deployer = None
    try:
        validate(p)
        project = ComposeProject(module, docker_client(p["docker_host"]), p["project_src"], p["files"],
                                 p["project_name"], p["env_file"], p["docker_host"])
        defined = project.services()
        unknown = [s for s in (p["services"] or []) + list(p["images"]) if s not in defined]
        if unknown:
            raise ComposeError("unknown service %s: the compose project %s defines %s" % (
                ", ".join(unknown), project.name, ", ".join(defined)))
        deployer = rel.Deployer(project, p)
        path = ledger_path(p, project)
        if module.check_mode and not os.path.isdir(os.path.dirname(path)):
            result = deploy(module, project, deployer) if p["state"] == "present" else \
                roll_back(module, project, deployer)
        else:
            os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
            busy = ("another deploy of this project (%s) holds %%(path)s%%(waited)s: wait for it to finish, or set "
                    "lock_timeout" % project.name)
            # the project's lock on this host, whatever the ledger; and the ledger's, for runs of older versions
            with _lock.exclusive_lock(project_lock_path(project), p["lock_timeout"], busy), \
                    _lock.exclusive_lock(path + ".lock", p["lock_timeout"], busy):
                recovered = {} if module.check_mode else recover_interrupted(project, deployer, path)
                result = deploy(module, project, deployer) if p["state"] == "present" else \
                    roll_back(module, project, deployer)
                if recovered:
                    result["recovered"] = recovered
    except RunbookError as exc:  # a ReleaseFailed carries the attempt's result; anything else changed nothing
        module.fail_from(exc, changed=False)
    finally:
        if deployer:
            deployer.close()
    module.exit_json(**result)


def validate(p):
    if p["state"] == "present":
        rel.check_version(p["version"])
        if not p["services"]:
            raise ComposeError("services is empty: name the compose services to deploy, such as [api]")
    elif p["to"] not in ("previous", "last_good"):
        rel.check_version(p["to"], "to")
    for key in ("health_timeout", "keep_releases"):
        if p[key] < 1:
            raise ComposeError("%s=%s must be 1 or more" % (key, p[key]))
    for key in ("monitor", "stop_timeout", "lock_timeout"):
        if p[key] < 0:
            raise ComposeError("%s=%s must be 0 or more" % (key, p[key]))
    if p["health_interval"] <= 0:
        raise ComposeError("health_interval must be above 0")
    for service, reference in p["images"].items():
        if not rel.IMAGE_PATTERN.match(str(reference)):
            raise ComposeError("images.%s=%r is not an image reference such as registry.example.com/api:1.5.0"
                               % (service, reference))
    if p["health_checks"]:  # none is fine: the new containers themselves are always checked
        try:
            _health.validate(dict(checks=p["health_checks"], timeout=p["health_timeout"], success_threshold=1,
                                  failure_threshold=None, interval=p["health_interval"], start_period=0))
        except _health.ProbeFailed as exc:
            raise ComposeError("health_checks: %s" % exc)


if __name__ == "__main__":
    main()
