# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

A docker compose project driven the same way with ``docker compose`` (v2, the CLI plugin) and
``docker-compose`` (v1, Debian 12's package): commands go through ``module.run_command`` with argv lists;
containers and images are read through the docker SDK by compose's own labels, which both versions set."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_argument_spec, docker_sdk, live_containers
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._reports import replace_file

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


def compose_argument_spec():
    """Options naming a compose project, shared by the modules that act on one (doc fragments: compose, docker)."""
    spec = dict(
        project_src=dict(type="path", required=True),
        files=dict(type="list", elements="path"),
        project_name=dict(type="str"),
        env_file=dict(type="path"),
    )
    spec.update(docker_argument_spec())
    return spec


class ComposeError(RunbookError):
    """The compose project cannot be used as asked; the message says why and what to do."""


def compose_command(module):
    """argv prefix of the compose the host has: ``docker compose`` when the plugin answers, else
    ``docker-compose``."""
    docker = module.get_bin_path("docker")
    if docker:
        rc, _out, _err = module.run_command([docker, "compose", "version"])
        if rc == 0:
            return [docker, "compose"]
    legacy = module.get_bin_path("docker-compose")
    if legacy:
        return [legacy]
    raise ComposeError("neither 'docker compose' (the compose plugin) nor 'docker-compose' is installed on this "
                       "host: install one (Debian 12: apt-get install docker-compose)")


def default_project_name(project_dir):
    """The name compose itself gives a project: its folder's name, lower case, only [a-z0-9_-]."""
    return re.sub(r"[^a-z0-9_-]", "", os.path.basename(os.path.abspath(project_dir)).lower())


def read_env_file(path):
    """``{name: value}`` of an env file (missing file: empty), and its lines to rewrite it faithfully."""
    if not os.path.exists(path):
        return {}, []
    with open(path) as fh:
        lines = fh.read().splitlines()
    values = {}
    for line in lines:
        match = ENV_LINE.match(line)
        if match:
            values[match.group(1)] = match.group(2).strip().strip("'\"")
    return values, lines


def env_file_text(lines, updates):
    """The env file's text with ``updates`` set: changed in place where the name is (on every line that sets
    it: compose takes the last one), else appended; every other line (comments, secrets) kept as it was."""
    found = set()
    out = []
    for line in lines:
        match = ENV_LINE.match(line)
        if match and match.group(1) in updates:
            found.add(match.group(1))
            out.append("%s=%s" % (match.group(1), updates[match.group(1)]))
        else:
            out.append(line)
    out.extend("%s=%s" % (name, value) for name, value in sorted(updates.items()) if name not in found)
    return "\n".join(out) + "\n"


class ComposeProject:
    """One compose project: its files, env file and name, and the docker engine it runs on."""

    def __init__(self, module, client, project_dir, files=None, project_name=None, env_file=None, docker_host=None):
        self.module = module
        self.client = client
        # the compose CLI talks to the engine the SDK client does
        self.environ = {"DOCKER_HOST": docker_host} if docker_host else {}
        self.project_dir = os.path.abspath(project_dir)
        if not os.path.isdir(self.project_dir):
            raise ComposeError("project_src %s is not a directory: give the folder of the compose project"
                               % self.project_dir)
        if files:
            self.files = [f if os.path.isabs(f) else os.path.join(self.project_dir, f) for f in files]
            missing = [f for f in self.files if not os.path.isfile(f)]
            if missing:
                raise ComposeError("compose file %s not found: fix files or project_src" % ", ".join(missing))
        else:
            found = [os.path.join(self.project_dir, f) for f in DEFAULT_FILES
                     if os.path.isfile(os.path.join(self.project_dir, f))]
            if not found:
                raise ComposeError("no compose file in %s (looked for %s): fix project_src or set files"
                                   % (self.project_dir, ", ".join(DEFAULT_FILES)))
            self.files = found[:1]
        self.name = project_name or default_project_name(self.project_dir)
        self.env_file = env_file or os.path.join(self.project_dir, ".env")
        self.command = compose_command(module)

    def files_sha256(self):
        digest = hashlib.sha256()
        for path in self.files:
            with open(path, "rb") as fh:
                digest.update(fh.read())
        return digest.hexdigest()

    def argv(self, args, env_file=None, extra_files=()):
        argv = list(self.command) + ["-p", self.name]
        for path in list(self.files) + list(extra_files):
            argv += ["-f", path]
        if env_file or os.path.exists(self.env_file):
            argv += ["--env-file", env_file or self.env_file]
        return argv + list(args)

    def run(self, args, env_file=None, extra_files=(), what=None, environ=None, check=True):
        """compose's stdout; with ``check=False`` (exit code, stdout, stderr). ``environ`` adds variables to
        compose's environment (for interpolation, and for ``run -e NAME`` to pass on)."""
        rc, out, err = self.module.run_command(self.argv(args, env_file, extra_files), cwd=self.project_dir,
                                               environ_update=dict(self.environ, **(environ or {})))
        if not check:
            return rc, out, err
        if rc != 0:
            what = what or " ".join(self.command[-1:] + list(args[:1]))
            raise ComposeError("%s failed (rc=%s): %s" % (what, rc, (err or out).strip()[-2000:]))
        return out

    def services(self, env_file=None):
        """The services the compose files define (this also validates the files)."""
        return self.run(["config", "--services"], env_file=env_file, what="reading the compose files").split()

    def service_images(self, services, env_file=None, extra_files=()):
        """``{service: image reference}`` as compose resolves them with ``env_file``'s values."""
        try:
            import yaml
        except ImportError:
            raise ComposeError("PyYAML is needed to read the compose configuration: install python3-yaml")
        config = yaml.safe_load(self.run(["config"], env_file=env_file, extra_files=extra_files,
                                         what="reading the compose files")) or {}
        defined = config.get("services") or {}
        images = {}
        for service in services:
            image = (defined.get(service) or {}).get("image")
            if not image:
                raise ComposeError("service %s has no image: in the compose files: compose_release deploys "
                                   "images (give the service an image, with build if it is built here)" % service)
            images[service] = image
        return images

    def containers(self, service, running_only=True):
        """The service's containers (not one-off ``run`` containers), oldest first."""
        labels = ["%s=%s" % (PROJECT_LABEL, self.name), "%s=%s" % (SERVICE_LABEL, service)]
        found = live_containers(self.client, {"label": labels}, include_stopped=not running_only)
        found = [c for c in found if c.labels.get(ONEOFF_LABEL, "False") != "True"]
        return sorted(found, key=lambda c: c.attrs.get("Created", ""))

    def image_id(self, reference):
        """The image id (``sha256:...``) of a reference present on the engine, or None."""
        try:
            return self.client.images.get(reference).id
        except docker_sdk().errors.NotFound:  # ImageNotFound is one
            return None

    def write_env(self, updates):
        """Set ``updates`` in the env file (created 0600 when missing, mode kept otherwise)."""
        _values, lines = read_env_file(self.env_file)
        mode = os.stat(self.env_file).st_mode & 0o7777 if os.path.exists(self.env_file) else 0o600
        replace_file(self.env_file, env_file_text(lines, updates), mode=mode)

    def pinned_env(self, updates, directory):
        """A temporary copy of the env file with ``updates`` set, to resolve or run a release before the
        real env file says so."""
        _values, lines = read_env_file(self.env_file)
        fd, path = tempfile.mkstemp(prefix=".env.", dir=directory)
        with os.fdopen(fd, "w") as fh:
            fh.write(env_file_text(lines, updates))
        return path


def pin_override(images, directory, yaml_version=None):
    """A compose override file that runs each service from an image id, so a release is started from
    exactly the image that was recorded, whatever its tag points to now. ``yaml_version`` is the main
    file's format version (docker-compose v1 refuses to merge files of different versions)."""
    lines = (['version: "%s"' % yaml_version] if yaml_version else []) + ["services:"]
    for service, image_id in sorted(images.items()):
        lines += ["  %s:" % service, "    image: %s" % image_id]
    fd, path = tempfile.mkstemp(prefix="release.", suffix=".yml", dir=directory)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path
