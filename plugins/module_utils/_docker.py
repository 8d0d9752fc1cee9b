# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Run client programs inside a running container through the docker SDK, with streamed stdin and
stdout and checked exit codes: the runbooks' ``docker compose exec -T postgres pg_dump``, done right.

``ContainerRunner`` has the same interface as ``_runner.LocalRunner`` (stream, session, run), so the
modules never care where pg_dump runs.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import re
import signal
import socket
import stat
import struct
import tarfile
import threading
import time

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._runner import (
    BoundedBuffer,
    LineReader,
    PipeWriter,
    run_fed,
)

STDOUT, STDERR = 1, 2


def docker_sdk():
    """The docker SDK, imported on first use: importing it takes 0.15 s, and most runs (an HTTP health
    check, a backup on the host) never talk to docker. Modules call require_libraries(docker=...) first.
    """
    import docker
    import docker.errors
    return docker


def docker_argument_spec():
    """The docker daemon, for every module that talks to it (doc fragment: docker; action group: docker)."""
    return dict(docker_host=dict(type="str"))


def container_argument_spec():
    """Options of every module that can run its client inside a container (doc fragments: container, docker)."""
    spec = dict(container=dict(type="str"), container_user=dict(type="str"))
    spec.update(docker_argument_spec())
    return spec


class ContainerError(RunbookError):
    """The container cannot be used; the message says why and what to do."""


def docker_client(docker_host=None):
    """A docker SDK client for ``docker_host`` (or DOCKER_HOST, or the local socket)."""
    try:
        if docker_host:
            return docker_sdk().DockerClient(base_url=docker_host, version="auto")
        return docker_sdk().from_env(version="auto")
    except docker_sdk().errors.DockerException as exc:
        raise ContainerError("cannot talk to the docker engine (%s): %s. Start docker, or set docker_host."
                             % (docker_host or os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"), exc))


@contextlib.contextmanager
def docker_errors(what):
    """The docker SDK's errors inside become a ContainerError: ``what`` failed, and the engine's explanation."""
    sdk = docker_sdk()
    try:
        yield
    except sdk.errors.DockerException as exc:
        raise ContainerError("%s: %s" % (what, getattr(exc, "explanation", None) or exc))


def live_containers(client, filters=None, include_stopped=False):
    """The containers the engine lists, each inspected; one removed in between (a deploy recreating a service,
    another job's cleanup) is skipped - the SDK's plain list fails the whole run with NotFound for it."""
    return client.containers.list(all=include_stopped, filters=filters, ignore_removed=True)


def live_images(client, filters=None, intermediate=False):
    """The images the engine lists, each inspected, skipping one removed in between (as live_containers): the
    SDK's images.list has no ignore_removed."""
    sdk = docker_sdk()
    found = []
    for listed in client.api.images(all=intermediate, filters=filters):
        try:
            found.append(client.images.get(listed["Id"]))
        except sdk.errors.ImageNotFound:
            continue
    return found


def image_ids_in_use(client, excluding=()):
    """Ids of the images that containers (running or stopped, except the ids in ``excluding``) were created from,
    from the engine's listing alone: no container is inspected, so none can vanish in between."""
    return {c["ImageID"] for c in client.api.containers(all=True) if c["Id"] not in excluding}


def present_image_ids(client):
    """Ids of every image the engine holds (intermediate ones too), from its listing alone."""
    return {i["Id"] for i in client.api.images(all=True)}


def parse_docker_time(text):
    """Docker's RFC 3339 times (nanoseconds, Z) as aware datetimes; None for the zero time or garbage."""
    if not text or text.startswith("0001-"):
        return None
    text = text.replace("Z", "+00:00")
    head, _dot, rest = text.partition(".")
    if rest:  # trim the fraction (nanoseconds) to microseconds, keep the offset
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + "." + rest[:min(digits, 6)] + rest[digits:]
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def _raw_socket(sock):
    # exec_start(socket=True) hands back a SocketIO over the real socket; half-closing needs the latter
    return getattr(sock, "_sock", sock)


class _Frames:
    """Reads docker's multiplexed attach stream (8-byte header: stream id, size) from a raw socket."""

    def __init__(self, sock):
        self.sock = sock
        self._buf = bytearray()
        self.eof = False

    def _fill(self, n):
        while len(self._buf) < n:
            if self.eof:
                return False
            try:
                data = self.sock.recv(max(n - len(self._buf), 1024 * 1024))
            except ConnectionResetError:
                # dockerd resets the attach connection when the process exited while we still wrote to its
                # stdin (pg_restore --list stops after the table of contents): the output ended there; the
                # exit code, from exec_inspect, says how the process did
                data = b""
            if not data:
                self.eof = True
                return False
            self._buf += data
        return True

    def next(self):
        """(stream id, payload) of the next frame, or (None, b'') at the end."""
        if not self._fill(8):
            return None, b""
        stream_id, size = struct.unpack(">BxxxL", bytes(self._buf[:8]))
        del self._buf[:8]
        if not self._fill(size):
            data, self._buf = bytes(self._buf), bytearray()
            return stream_id, data
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return stream_id, data


class _Exec:
    """One ``docker exec`` with its attach socket."""

    def __init__(self, runner, argv, stdin):
        self.runner = runner
        self.argv = list(argv)
        api = runner.client.api
        try:
            self.exec_id = api.exec_create(runner.container, self.argv, stdout=True, stderr=True, stdin=stdin,
                                           tty=False, user=runner.user or "", environment=runner.env)["Id"]
            self._sock_io = api.exec_start(self.exec_id, socket=True)
        except docker_sdk().errors.APIError as exc:
            raise ContainerError("docker exec %s in container %s failed: %s"
                                 % (self.argv[0], runner.container, exc.explanation or exc))
        self.sock = _raw_socket(self._sock_io)
        self.frames = _Frames(self.sock)
        self.stderr = BoundedBuffer()

    def read_stdout(self):
        """The next stdout payload; b'' at the end. stderr frames are kept aside."""
        while True:
            stream_id, data = self.frames.next()
            if stream_id is None:
                return b""
            if stream_id == STDERR:
                self.stderr.add(data)
                continue
            if data:
                return data

    def write(self, data):
        self.sock.sendall(data)

    def close_stdin(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def exit_code(self):
        api = self.runner.client.api
        deadline = time.monotonic() + 30
        while True:
            info = api.exec_inspect(self.exec_id)
            if not info.get("Running") or time.monotonic() > deadline:
                return info.get("ExitCode")
            time.sleep(0.05)

    def finish(self):
        while self.read_stdout():
            pass
        self._close_socket()
        return self.exit_code(), self.stderr.text()

    def _close_socket(self):
        # shutdown() first: it wakes a feeder thread blocked in sendall() (close() does not)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for closer in (self._sock_io.close, self.sock.close):
            try:
                closer()
            except OSError:
                pass

    def kill(self):
        """Stop the process: closing the stream gives it EPIPE; the host pid (same machine) ends it now."""
        try:
            pid = self.runner.client.api.exec_inspect(self.exec_id).get("Pid")
            if pid:
                os.kill(pid, signal.SIGTERM)
        except (docker_sdk().errors.APIError, OSError):
            pass
        self._close_socket()


class ContainerStream:
    def __init__(self, runner, argv):
        self.argv = argv
        self._exec = _Exec(runner, argv, stdin=False)

    def read(self):
        return self._exec.read_stdout()

    def finish(self):
        return self._exec.finish()

    def kill(self):
        self._exec.kill()


class ContainerSession:
    def __init__(self, runner, argv):
        self.argv = argv
        self._exec = _Exec(runner, argv, stdin=True)
        self._lines = LineReader(self._exec.read_stdout)

    def write(self, data):
        self._exec.write(data)

    def readline(self):
        return self._lines.readline()

    def stderr_text(self):
        return self._exec.stderr.text()

    def close(self):
        self._exec.close_stdin()
        return self._exec.finish()

    def kill(self):
        self._exec.kill()


class ContainerFeed:
    """A process in the container we write stdin to while a thread collects its output (same contract as
    _runner.LocalFeed)."""

    def __init__(self, runner, argv):
        self.argv = argv
        self._exec = _Exec(runner, argv, stdin=True)
        self.accepting = True
        self._out = bytearray()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self):
        for data in iter(self._exec.read_stdout, b""):
            self._out += data
        # the process is gone: dockerd stops reading our stdin, so wake a write blocked on it
        self._exec.close_stdin()
        self.accepting = False

    def write(self, data):
        if self.accepting:
            try:
                self._exec.write(data)
            except OSError:
                self.accepting = False

    def finish(self):
        self._exec.close_stdin()
        self._reader.join()
        rc, err = self._exec.finish()
        return rc, bytes(self._out), err


# A private directory made in the container by mktemp (RestoreScratch): the only place named pipes are made.
PIPE_DIRECTORY = re.compile(r"^/tmp/stackops-[a-z]+\.[A-Za-z0-9]{6,}$")
# How long a named pipe's reader (the shell that starts the program in the container) may take to open it.
PIPE_OPEN_SECONDS = 30


class ContainerPipes:
    """Named pipes, made in a private directory of the container, that this host writes to directly: a program
    started in the container with its stdin redirected from one reads our bytes with no copy through the docker
    engine (dockerd and containerd-shim each copy every byte of ``docker exec``'s stdin; for a restore's gigabyte
    that cost more CPU than pg_restore's own parsing on two cores).

    It needs the container's filesystem through ``/proc/<pid>/root``: the engine on this machine, this process
    in the host's pid namespace and allowed to see the container's (root, or the same user). ``open`` returns
    None otherwise and callers use ``docker exec``'s stdin. The directory is opened one component at a time with
    O_NOFOLLOW, so a link planted in the container cannot send our writes anywhere else on this host."""

    def __init__(self, runner, directory, dir_fd, parent_fd):
        self.runner, self.directory, self.dir_fd = runner, directory, dir_fd
        self._parent_fd = parent_fd  # the directory's parent (/tmp), to remove it from here
        self._number = 0
        self._lock = threading.Lock()

    @classmethod
    def open(cls, runner, directory):
        if not PIPE_DIRECTORY.match(directory):
            return None
        try:
            pid = runner.client.api.inspect_container(runner.container_id)["State"]["Pid"]
            fd = os.open("/proc/%d/root" % pid, os.O_RDONLY | os.O_DIRECTORY)
        except (docker_sdk().errors.DockerException, KeyError, TypeError, OSError):
            return None
        parent = None
        try:
            for part in directory.strip("/").split("/"):
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                if parent is not None:
                    os.close(parent)
                parent, fd = fd, inner
        except OSError:
            for opened in (fd, parent):
                if opened is not None:
                    os.close(opened)
            return None  # another pid namespace (this module in a container, a remote engine): not our directory
        return cls(runner, directory, fd, parent)

    def feed(self, argv):
        """A ``ContainerFeed`` look-alike whose stdin is a new named pipe of the directory."""
        with self._lock:
            self._number += 1
            name = "stdin-%d" % self._number
        os.mkfifo(name, 0o600, dir_fd=self.dir_fd)
        self._give(name)
        return PipeFeed(self, name, argv)

    def put(self, name, chunks):
        """A new file ``name`` (0600, the container user's) in the directory holding ``chunks``, written from
        here (a file through ``docker exec`` costs a process in the container)."""
        with self._create(name) as out:
            for data in chunks:
                out.write(data)
        return "%s/%s" % (self.directory, name)

    def put_file(self, name, path):
        """Like ``put``, a copy of the local file ``path`` made by the kernel (sendfile: no byte passes through
        this process)."""
        with self._create(name) as out, open(path, "rb") as source:
            offset, size = 0, os.fstat(source.fileno()).st_size
            while offset < size:
                sent = os.sendfile(out.fileno(), source.fileno(), offset, size - offset)
                if not sent:
                    raise ContainerError("%s ended at %d of its %d bytes while it was copied into container %s"
                                         % (path, offset, size, self.runner.container))
                offset += sent
        return "%s/%s" % (self.directory, name)

    def _create(self, name):
        """A new file ``name`` of the directory, open for writing, given to the container's user."""
        out = open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=self.dir_fd), "wb")
        try:
            self._give(name)
        except BaseException:
            out.close()
            raise
        return out

    def _give(self, name):
        owner = os.fstat(self.dir_fd)  # the directory's owner: the user the programs run as in the container
        os.chown(name, owner.st_uid, owner.st_gid, dir_fd=self.dir_fd, follow_symlinks=False)

    def close(self):
        opened, self.dir_fd, self._parent_fd = (self.dir_fd, self._parent_fd), None, None
        for fd in opened:
            if fd is not None:
                os.close(fd)

    def remove(self):
        """Remove the directory and what is in it (files and pipes this run made) from here, and close it: a
        ``rm -rf`` would cost an exec (about 80 ms of CPU, at the end of every restore into a container). False
        when something there is not ours to remove this way (a directory): the caller removes it in the
        container."""
        try:
            for name in os.listdir(self.dir_fd):
                os.unlink(name, dir_fd=self.dir_fd)  # a link is removed, never followed
            os.rmdir(os.path.basename(self.directory), dir_fd=self._parent_fd)  # a link there: ENOTDIR
            return True
        except OSError:
            return False
        finally:
            self.close()


class PipeFeed:
    """One program in the container reading a named pipe of ``ContainerPipes`` as its stdin (same contract as
    ContainerFeed: write, accepting, finish)."""

    def __init__(self, pipes, name, argv):
        self.argv = list(argv)
        self.accepting = True
        self._pipes, self._name = pipes, name
        inside = "%s/%s" % (pipes.directory, name)
        self._exec = _Exec(pipes.runner, ["sh", "-c", 'exec "$@" < "$0"', inside] + self.argv, stdin=False)
        self._out = bytearray()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        try:
            self._pipe = self._open()
        except BaseException:
            self._exec.kill()
            raise

    def _collect(self):
        for data in iter(self._exec.read_stdout, b""):
            self._out += data
        self.accepting = False

    def _open(self):
        """A PipeWriter to the pipe, once the shell in the container opened its read end (or None: it never did)."""
        deadline = time.monotonic() + PIPE_OPEN_SECONDS
        while self.accepting and time.monotonic() < deadline:
            try:
                fd = os.open(self._name, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=self._pipes.dir_fd)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise ContainerError("cannot open the pipe %s/%s in container %s: %s" % (
                        self._pipes.directory, self._name, self._pipes.runner.container, exc))
                time.sleep(0.002)
                continue
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.close(fd)
                raise ContainerError("%s/%s in container %s is not the pipe this run made" % (
                    self._pipes.directory, self._name, self._pipes.runner.container))
            return PipeWriter(fd)
        self.accepting = False
        return None

    def write(self, data):
        if not self.accepting or self._pipe is None:
            return
        try:
            self._pipe.write(data)
        except OSError:  # EPIPE: the program stopped reading; its exit code says why
            self.accepting = False

    def finish(self):
        if self._pipe is None:
            self._exec.kill()  # it never got its pipe (and may wait for it)
        else:
            os.close(self._pipe.fd)  # end of input
            self._pipe = None
        self._reader.join()
        rc, err = self._exec.finish()
        with contextlib.suppress(OSError):
            os.unlink(self._name, dir_fd=self._pipes.dir_fd)
        return rc, bytes(self._out), err


def tar_chunks(path, arcname, owner=None, chunk_size=1024 * 1024):
    """A tar of ``path`` (named ``arcname`` in it) as chunks, written by a thread into a pipe while they are read:
    never the whole archive in memory. ``owner`` (uid, gid) is who the entries belong to where they are unpacked
    (our files are 0600/0700: anyone else could not read them). Raises the writer's error at the end."""
    read_fd, write_fd = os.pipe()
    failed = []

    def owned(info):
        if owner is not None:
            info.uid, info.gid = owner
            info.uname = info.gname = ""
        return info

    def write():
        try:
            with os.fdopen(write_fd, "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
                tar.add(path, arcname=arcname, filter=owned)
        except BaseException as exc:  # pylint: disable=broad-except
            failed.append(exc)  # a reader that stopped early (EPIPE) included: it has its own error to raise

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    with os.fdopen(read_fd, "rb") as source:
        yield from iter(lambda: source.read(chunk_size), b"")
    writer.join()
    if failed:
        raise ContainerError("cannot read %s to copy it into the container: %s" % (path, failed[0]))


class ContainerRunner:
    """Runs the client programs inside ``container`` (name or id) through ``docker exec``."""

    kind = "container"

    def __init__(self, client, container, user=None, env=None):
        self.client = client
        self.container = container
        self.user = user
        self.env = dict(env or {})
        try:
            info = client.api.inspect_container(container)
        except docker_sdk().errors.NotFound:
            raise ContainerError("container %r does not exist on this host. Name a running container in "
                                 "'container' (see `docker ps`), or leave it out to run on the host." % container)
        except docker_sdk().errors.DockerException as exc:
            raise ContainerError("cannot inspect container %r: %s" % (container, exc))
        if not info.get("State", {}).get("Running"):
            raise ContainerError("container %r is not running (state: %s). Start it first."
                                 % (container, info.get("State", {}).get("Status")))
        self.container_id = info["Id"]
        self._found = set()  # programs has_program found

    def has_program(self, name):
        # each psql session asks, and each asking is an exec (tens of milliseconds): a program found stays
        if name not in self._found:
            rc, _out, _err = self.run(["sh", "-c", 'command -v "$0" >/dev/null', name])
            if rc != 0:
                return False
            self._found.add(name)
        return True

    def stream(self, argv):
        return ContainerStream(self, argv)

    def session(self, argv):
        return ContainerSession(self, argv)

    def feed(self, argv):
        return ContainerFeed(self, argv)

    def run(self, argv, input_chunks=None):
        return run_fed(self.feed(argv), input_chunks)

    def pipes(self, directory):
        """``ContainerPipes`` in ``directory`` (made by mktemp in the container), or None where this host cannot
        reach the container's filesystem."""
        return ContainerPipes.open(self, directory)

    def put_directory(self, local_dir, container_dir):
        """Copy a local directory into the container as ``container_dir``, streamed: the tar is made as the engine
        reads it, so a directory backup of any size costs a pipe's worth of memory."""
        rc, _out, err = self.run(["mkdir", "-p", os.path.dirname(container_dir)])
        if rc != 0:
            raise ContainerError("cannot create %s in container %s: %s" % (os.path.dirname(container_dir),
                                                                           self.container, err.strip()))
        try:
            accepted = self.client.api.put_archive(self.container, os.path.dirname(container_dir),
                                                   tar_chunks(local_dir, os.path.basename(container_dir),
                                                              self._user_ids()))
        except docker_sdk().errors.APIError as exc:
            raise ContainerError("cannot copy %s into container %s: %s" % (local_dir, self.container, exc))
        if not accepted:
            raise ContainerError("the docker engine refused to copy %s into container %s"
                                 % (local_dir, self.container))

    def _user_ids(self):
        """(uid, gid) of the user the programs run as in the container (the engine unpacks archives as root)."""
        ids = []
        for flag in ("-u", "-g"):
            rc, out, err = self.run(["id", flag])
            if rc != 0:
                raise ContainerError("cannot tell who %s is in container %s: %s"
                                     % (self.user or "the image's user", self.container, err.strip()))
            ids.append(int(out.decode().strip()))
        return tuple(ids)

    def get_archive(self, path):
        """A tar stream of ``path`` in the container (chunks of bytes)."""
        try:
            stream, _stat = self.client.api.get_archive(self.container, path, chunk_size=1024 * 1024)
        except docker_sdk().errors.APIError as exc:
            raise ContainerError("cannot copy %s out of container %s: %s" % (path, self.container, exc))
        return stream


def saved_images(client, names, chunk_size=1024 * 1024):
    """The chunks of ``docker save NAME...`` (one tar holding every image, with its tags), streamed from
    the engine's ``GET /images/get`` without the docker CLI."""
    with docker_errors("cannot read the images %s from the docker engine" % ", ".join(names)):
        response = client.api.get("%s/v%s/images/get" % (client.api.base_url, client.api.api_version),
                                  params={"names": list(names)}, stream=True)
    if response.status_code != 200:
        raise ContainerError("the docker engine did not save %s: HTTP %d %s" % (
            ", ".join(names), response.status_code, response.text[:300]))
    try:
        yield from response.iter_content(chunk_size)
    finally:
        response.close()


def load_images(client, chunks):
    """``docker load`` of a tar given as chunks (streamed to the engine); returns what the engine said it
    loaded (``Loaded image: ...`` lines)."""
    with docker_errors("the docker engine did not load the images"):
        answer = client.api.load_image(data=chunks)
        messages = list(answer) if not isinstance(answer, dict) else [answer]
    loaded = []
    for message in messages:
        if message.get("error") or message.get("errorDetail"):
            raise ContainerError("the docker engine did not load the images: %s" % (
                message.get("error") or message["errorDetail"]))
        text = message.get("stream") or ""
        loaded.extend(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Loaded image"))
    return loaded
