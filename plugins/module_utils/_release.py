# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

compose_release's work: the release ledger (JSON lines on the host), the two switch strategies, the health
gate with its monitor window, rollback to a release pinned by image id, and pruning old releases' images."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import tempfile
import time

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils import _health
from ansible_collections.stackops.runbook.plugins.module_utils._compose import ComposeError, pin_override
from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_sdk, image_ids_in_use
from ansible_collections.stackops.runbook.plugins.module_utils._reports import append_line, read_lines, replace_file

VERSION_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$")
# a docker image reference: [registry[:port]/]name[:tag][@digest], no spaces or shell metacharacters
IMAGE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._/:-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
GOOD = "succeeded"


class ReleaseFailed(RunbookError):
    """A deploy or rollback failed; ``result`` holds what to return with the failure."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result or {}


def check_version(value, what="version"):
    if not VERSION_PATTERN.match(value or ""):
        raise ComposeError("%s=%r is not a release version: use letters, digits, '.', '_', '+' and '-' (at most 128, "
                           "as an image tag), such as 1.4.2 or 2026-11-22.1" % (what, value))


def load_ledger(path):
    """compose_release's ledger: one entry per attempt and step, oldest first."""
    return read_lines(path)


def covers(entry, services):
    return all(s in (entry.get("images") or {}) for s in services)


def good_releases(entries, services):
    """Releases that served healthy, newest first, that include every one of ``services``."""
    return [e for e in reversed(entries) if e.get("result") == GOOD and covers(e, services)]


def same_images(entry, other, services):
    return all(entry["images"][s]["id"] == other["images"][s]["id"] for s in services)


def pick_rollback_target(entries, services, to, running=None):
    """The release to go back to: ``last_good`` (the newest good release, serving or not: a new server),
    ``previous`` (the newest good release whose images are not the ones
    ``running`` now, ``{service: [image ids]}``; without it, the newest good release is taken as serving), or
    the newest good release of version ``to``. Raise ComposeError saying what the ledger holds otherwise."""
    good = good_releases(entries, services)
    if not good:
        raise ComposeError("the release ledger has no good release of %s to roll back to" % ", ".join(services))
    if to == "last_good":
        return good[0]
    if to == "previous":
        def serving(entry):
            if running is None:
                return same_images(entry, good[0], services)
            return all(running.get(s) and set(running[s]) == {entry["images"][s]["id"]} for s in services)
        for entry in good:
            if not serving(entry):
                return entry
        raise ComposeError("the release ledger has no good release of %s before %s (the one serving)"
                           % (", ".join(services), good[0]["version"]))
    for entry in good:
        if entry["version"] == to:
            return entry
    raise ComposeError("version %s is not a good release of %s in the ledger (good releases: %s)" % (
        to, ", ".join(services), ", ".join(sorted({e["version"] for e in good}))))


UNFINISHED = ("started", "switched")


def unfinished_attempts(entries):
    """Attempts still marked started or switched: runs that were killed (a cancelled AWX job, a lost SSH
    connection) before they could say how they ended."""
    return [e for e in entries if e.get("attempt") and e.get("result") in UNFINISHED]


def tag_of(reference):
    """The tag of an image reference when it is a valid version (``myapp/api:1.4.2`` -> ``1.4.2``), else None."""
    name = reference.split("@", 1)[0]
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    return tag if VERSION_PATTERN.match(tag) and tag != "latest" else None


def kept_image_ids(entries, keep):
    """Image ids of the newest ``keep`` good releases (by version) of a ledger: what a rollback may need."""
    kept, versions = set(), []
    for entry in reversed(entries):
        if entry.get("result") == GOOD and (entry.get("version") in versions or len(versions) < keep):
            if entry.get("version") not in versions:
                versions.append(entry.get("version"))
            kept.update(i.get("id") for i in (entry.get("images") or {}).values())
    return kept


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def record(ledger_path, entry):
    """Write ``entry`` to the ledger: one line per attempt. An entry with the ``attempt`` of a line already
    there replaces that line (started -> switched -> its result), through a new file and a rename, so the
    ledger never holds half a line; any other entry is appended. Call under the project's lock."""
    directory = os.path.dirname(ledger_path) or "."
    os.makedirs(directory, mode=0o750, exist_ok=True)
    entry = dict(entry, time=now_iso(), host=socket.gethostname())
    if entry.get("attempt") and os.path.exists(ledger_path):
        with open(ledger_path) as fh:
            lines = fh.read().splitlines()
        for index, line in enumerate(lines):
            try:
                same = json.loads(line).get("attempt") == entry["attempt"]
            except (ValueError, AttributeError):
                same = False
            if same:
                lines[index] = json.dumps(entry, sort_keys=True, default=str)
                replace_file(ledger_path, "\n".join(lines) + "\n", mode=os.stat(ledger_path).st_mode & 0o777)
                return entry
    append_line(ledger_path, entry)
    return entry


def image_record(client, reference, image_id):
    digests = []
    try:
        digests = client.images.get(image_id).attrs.get("RepoDigests") or []
    except Exception:  # pylint: disable=broad-except
        pass
    return dict(ref=reference, id=image_id, digests=digests)


class Deployer:
    """Switches a compose project's services to a release (a version and an image id per service), gates
    the switch on health and undoes it when the gate fails."""

    WORKDIR_PREFIX = ".stackops-release."

    def __init__(self, project, params, on_switched=None):
        self.project = project
        self.params = params
        self.on_switched = on_switched  # called once a release serves (the old containers are gone)
        self.workdir = tempfile.mkdtemp(prefix=self.WORKDIR_PREFIX, dir=project.project_dir)
        self.yaml_version = self._compose_file_version()

    def sweep_workdirs(self):
        """Remove the work folders of killed runs (call under the project's lock). Returns their names."""
        removed = []
        for name in sorted(os.listdir(self.project.project_dir)):
            path = os.path.join(self.project.project_dir, name)
            if name.startswith(self.WORKDIR_PREFIX) and path != self.workdir and os.path.isdir(path) \
                    and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(name)
        return removed

    def close(self):
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _compose_file_version(self):
        # v1 wants an override file of the same format version as the main file; v2 ignores the key
        with open(self.project.files[0]) as fh:
            match = re.search(r"""^version:\s*["']?([0-9.]+)""", fh.read(), re.M)
        return match.group(1) if match else None

    def run_files(self, release):
        """The env file and override file that start ``release`` (its version, its image ids)."""
        # the env file's version variable as the release recorded it (an adopted release of unknown version has none)
        env_path = self.project.pinned_env(release.get("env") or {}, self.workdir)
        images = {s: release["images"][s]["id"] for s in release["services"]}
        return env_path, pin_override(images, self.workdir, self.yaml_version)

    def health_checks(self, containers, release=None):
        """The new containers' own checks, the user's checks, and with ``release`` the check that the app
        answers with that release's version (only meaningful once no other version serves)."""
        checks = [dict(name="container %s" % c.name, type="container", container=c.name, require_healthcheck=False)
                  for c in containers]
        checks += list(self.params["health_checks"] or [])
        if release is not None and self.params["version_url"]:
            checks.append(dict(name="version %s" % release["version"], type="http", url=self.params["version_url"],
                               json={self.params["version_field"]: release["version"]}))
        return checks

    def gate(self, checks):
        """Wait until ``checks`` are healthy (warnings allowed). Raise ProbeFailed."""
        return _health.wait_until_up(checks, self.params["health_timeout"], self.params["health_interval"],
                                     self.params["docker_host"])

    def monitor(self, checks, seconds):
        """Watch ``checks`` for ``seconds`` (at least one round); raise ProbeFailed when a round is down."""
        return _health.watch(checks, seconds, self.params["health_interval"], self.params["docker_host"])

    def remove(self, containers):
        for container in containers:
            try:
                container.stop(timeout=self.params["stop_timeout"])
            except docker_sdk().errors.APIError:
                pass  # already stopped or gone: removing it is what matters
            try:
                container.remove(force=True)
            except docker_sdk().errors.NotFound:
                pass

    def switch(self, release, monitor):
        """Start ``release`` and make it the one serving, then watch it for ``monitor`` seconds. Returns the
        last health round; raises ProbeFailed or ComposeError (with start-first, after removing the new
        containers when the old ones never stopped)."""
        services = release["services"]
        env_path, override = self.run_files(release)
        old = {s: self.project.containers(s) for s in services}
        old_ids = {c.id for group in old.values() for c in group}
        if self.params["strategy"] == "start-first":
            scale = []
            for service in services:
                scale += ["--scale", "%s=%d" % (service, len(old[service]) + max(1, len(old[service])))]
            try:
                self.project.run(["up", "-d", "--no-deps", "--no-recreate"] + scale + services, env_path, [override],
                                 what="starting the new containers beside the old ones")
                new = [c for s in services for c in self.project.containers(s) if c.id not in old_ids]
                # old and new both serve until the gate passes, so the version check waits for the monitor
                self.gate(self.health_checks(new))
            except (ComposeError, _health.ProbeFailed):
                # the old containers never stopped: removing the new ones is the whole rollback
                self.remove([c for s in services for c in self.project.containers(s, running_only=False)
                             if c.id not in old_ids])
                raise
            self.remove([c for group in old.values() for c in group])
            self._switched(release)
        else:
            self.project.run(["up", "-d", "--no-deps"] + services, env_path, [override],
                             what="recreating the containers")
            self._switched(release)
            new = [c for s in services for c in self.project.containers(s)]
            self.gate(self.health_checks(new, release))
        return self.monitor(self.health_checks(new, release), monitor)

    def _switched(self, release):
        if self.on_switched is not None:
            self.on_switched(release)

    def verify(self, release):
        """Check that ``release``, already running, answers healthy (after a start-first gate failed)."""
        containers = [c for s in release["services"] for c in self.project.containers(s)]
        checks = self.health_checks(containers, release)
        self.gate(checks)
        return self.monitor(checks, 0)

    def prune(self, entries, keep):
        """Remove the images of good releases older than the newest ``keep`` ones, unless a container (even a
        stopped one) uses them. Failed releases' images stay for whoever investigates, adopted ones were not
        deployed by us. Returns the image references removed."""
        good = [e for e in entries if e.get("result") == GOOD]
        keep_ids = kept_image_ids(entries, keep)
        client = self.project.client
        in_use = image_ids_in_use(client)
        removed = []
        for entry in good:
            if entry.get("action") == "adopt":
                continue
            for image in (entry.get("images") or {}).values():
                if image["id"] in keep_ids or image["id"] in in_use or self.project.image_id(image["id"]) is None:
                    continue
                try:
                    if self.project.image_id(image["ref"]) == image["id"]:
                        client.images.remove(image["ref"])  # untag only when the tag still names this image
                        removed.append(image["ref"])
                    if self.project.image_id(image["id"]) and not client.images.get(image["id"]).tags:
                        client.images.remove(image["id"])
                except Exception:  # pylint: disable=broad-except
                    continue  # still used (another tag, a child image): keeping it is the safe side
        return sorted(set(removed))


def elapsed(started):
    return round(time.monotonic() - started, 1)
