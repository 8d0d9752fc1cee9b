# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

One small interface for running client programs (pg_dump, psql, pg_restore) either as local processes
or inside a container through ``docker exec``, so the modules never care which one they got:

* ``stream(argv)``: a process whose stdout is read as a stream of chunks; ``finish()`` returns its
  exit code and stderr, so every exit code is checked.
* ``session(argv)``: a process we talk to line by line over stdin/stdout (an interactive psql).
* ``run(argv, input_chunks)``: run to completion, feeding stdin from an iterator, collecting output.
"""

from __future__ import annotations

import array
import fcntl
import os
import re
import select
import shutil
import subprocess
import termios
import threading
import time

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError

CHUNK_SIZE = 1024 * 1024
PIPE_SIZE = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
DEFAULT_PIPE_SIZE = 64 * 1024
# A PipeWriter's pause while its reader drains a full pipe, in seconds: the first, the shortest, the longest (a
# reader that takes 100 MB/s empties a 1 MiB pipe in 10 ms)
PAUSE_FIRST, PAUSE_MIN, PAUSE_MAX = 0.001, 0.0001, 0.01
STDERR_LIMIT = 64 * 1024
# Debian's and Ubuntu's psql, pg_dump and pg_restore in PATH are links to pg_wrapper, a Perl script that picks a
# PostgreSQL version and then runs PG_BINROOT/VERSION/bin/PROGRAM: 30-100 ms of CPU before each program starts,
# and a restore of the benchmark database starts nine (see pg_wrapper_pick).
PG_WRAPPER = "pg_wrapper"
PG_BINROOT = "/usr/lib/postgresql"
PG_SYSCONFDIR = "/etc/postgresql-common"  # pg_wrapper's default PGSYSCONFDIR (pg_service.conf, psqlrc)


class CommandError(RunbookError):
    """A client program failed; ``stderr`` carries what it said."""

    def __init__(self, argv, rc, stderr):
        self.argv = list(argv)
        self.rc = rc
        self.stderr = stderr
        what = os.path.basename(str(argv[0])) if argv else "command"
        if rc is not None and rc < 0:
            status = "was killed by signal %d" % -rc
        else:
            status = "exited with code %s" % rc
        super().__init__("%s %s: %s" % (what, status, stderr.strip() or "(no error output)"))


class BoundedBuffer:
    """Keeps the first and the last bytes of a stream that may be large (stderr of a long dump)."""

    def __init__(self, limit=STDERR_LIMIT):
        self.limit = limit
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data):
        room = self.limit // 2 - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - self.limit // 2
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def text(self):
        middle = ("\n[... %d bytes left out ...]\n" % self.dropped).encode() if self.dropped else b""
        return bytes(self.head + middle + self.tail).decode("utf-8", "replace")


class LineReader:
    """Splits a chunk source into lines; ``read_chunk`` returns b'' at the end of the stream."""

    def __init__(self, read_chunk):
        self._read_chunk = read_chunk
        self._buffer = b""
        self._eof = False

    def readline(self):
        while b"\n" not in self._buffer and not self._eof:
            chunk = self._read_chunk()
            if not chunk:
                self._eof = True
            self._buffer += chunk
        if b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            return line + b"\n"
        line, self._buffer = self._buffer, b""
        return line


def widen_pipe(fd):
    """A 1 MiB pipe instead of 64 KiB: the producer (pg_dump; we, restoring) keeps writing while the consumer
    works, and both sides wake a sixteenth as often (restoring a GB through it: about 0.5 CPU-seconds less).
    Returns the pipe's size."""
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        pass  # not Linux, or above /proc/sys/fs/pipe-max-size for an unprivileged user
    try:
        return fcntl.fcntl(fd, F_GETPIPE_SZ)
    except OSError:
        return DEFAULT_PIPE_SIZE


class PipeWriter:
    """Writes whole chunks into a (widened) pipe whose reader takes a page at a time, and wakes a few hundred
    times per gigabyte, not once per page.

    A writer blocked on a full pipe is woken each time its reader frees a page, and pg_restore reads its stdin
    4 kB at a time (stdio's buffer): one gigabyte restored into a container woke the module 155,000 times, a
    CPU-second of its 3.2 (and each wake-up costs pg_restore too). Here the pipe is non-blocking: when it is
    full, the writer waits for the reader's first page (poll), then pauses so that the reader drains about half
    of the pipe before the next write: 3,400 wake-ups. The pause follows the reader: shorter when the pipe was
    found empty (the reader may have waited), longer when little was taken. A reader that has gone fails the
    write with EPIPE, as before."""

    def __init__(self, fd):
        self.fd = fd
        self.capacity = widen_pipe(fd)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.pause = PAUSE_FIRST
        self._room = select.poll()
        self._room.register(fd, select.POLLOUT)
        self._pending = array.array("i", [0])

    def write(self, data):
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                self._wait()

    def _wait(self):
        self._room.poll()  # the reader took its first page back (or has gone: the next write says so)
        time.sleep(self.pause)
        try:
            fcntl.ioctl(self.fd, termios.FIONREAD, self._pending)
        except OSError:
            return  # no count of what is in the pipe here: the pause stays
        left = self._pending[0]
        if left == 0:
            wanted = self.pause / 4  # it may have waited for us: much shorter
        else:  # what would have let half the pipe drain at the pace just seen
            wanted = self.pause * (self.capacity / 2) / max(self.capacity - left, 1)
        self.pause = min(max((self.pause + wanted) / 2, PAUSE_MIN), PAUSE_MAX)


class LocalStream:
    """A local process whose stdout we stream."""

    def __init__(self, argv, env, pass_fds=()):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, pass_fds=pass_fds)
        widen_pipe(self.proc.stdout.fileno())
        self._stderr = BoundedBuffer()
        self._stderr_thread = threading.Thread(target=_drain, args=(self.proc.stderr, self._stderr), daemon=True)
        self._stderr_thread.start()

    def read(self):
        return self.proc.stdout.read1(CHUNK_SIZE)

    def finish(self):
        self.proc.stdout.close()
        rc = self.proc.wait()
        self._stderr_thread.join()
        return rc, self._stderr.text()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()


class LocalSession:
    """An interactive local process (psql) we write to and read lines from."""

    def __init__(self, argv, env, pass_fds=()):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, pass_fds=pass_fds)
        self._stderr = BoundedBuffer()
        self._stderr_thread = threading.Thread(target=_drain, args=(self.proc.stderr, self._stderr), daemon=True)
        self._stderr_thread.start()
        self._lines = LineReader(lambda: self.proc.stdout.read1(65536))

    def write(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def readline(self):
        return self._lines.readline()

    def stderr_text(self):
        return self._stderr.text()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self):
        for stream in (self.proc.stdin,):
            try:
                stream.close()
            except OSError:
                pass
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._stderr_thread.join()
        self.proc.stdout.close()
        return rc, self._stderr.text()


def pg_wrapper_pick(name, env, binroot=None):
    """The program Debian's pg_wrapper runs for ``name`` in ``env``, or None where its pick depends on more
    than the versions installed. With PGHOST set (a host or socket directory given) it ignores the local
    clusters, PGCLUSTER and ~/.postgresqlrc and takes the newest version that has the program (pg_wrapper(1));
    without PGHOST, or for a psql older than 13 (which it runs with libreadline preloaded), it is left to
    pg_wrapper."""
    if "PGHOST" not in env:
        return None
    binroot = binroot or PG_BINROOT
    try:
        entries = os.listdir(binroot)
    except OSError:
        return None
    versions = [(float(entry), entry) for entry in entries if re.fullmatch(r"\d+\.?\d+", entry)
                and os.access(os.path.join(binroot, entry, "bin", name), os.X_OK)]
    if not versions:
        return None
    number, newest = max(versions)
    if name == "psql" and number < 13:
        return None
    return os.path.join(binroot, newest, "bin", name)


class LocalRunner:
    """Runs the client programs on this host."""

    kind = "host"

    def __init__(self, env=None, bin_dir=None, pass_fds=()):
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.bin_dir = bin_dir
        self.pass_fds = tuple(pass_fds)  # the passfile's descriptor: children read it as /dev/fd/N
        self._picks = {}  # name -> the program pg_wrapper would run for it, or None (see _start)

    def _start(self, argv):
        """(argv, env) to start ``argv`` with: the program from bin_dir when set; else as PATH finds it, but where
        that is Debian's pg_wrapper and its pick is known, the program it would run, started directly (with the
        PGSYSCONFDIR it would set), so each start costs no Perl."""
        name = argv[0]
        if os.path.isabs(name):
            return list(argv), self.env
        if self.bin_dir:
            return [os.path.join(self.bin_dir, name)] + list(argv[1:]), self.env
        if name not in self._picks:
            found = shutil.which(name, path=self.env.get("PATH", os.defpath))
            wrapped = found and os.path.basename(os.path.realpath(found)) == PG_WRAPPER
            self._picks[name] = pg_wrapper_pick(name, self.env) if wrapped else None
        picked = self._picks[name]
        if picked is None:
            return list(argv), self.env
        return [picked] + list(argv[1:]), dict(self.env, PGSYSCONFDIR=self.env.get("PGSYSCONFDIR", PG_SYSCONFDIR))

    def has_program(self, name):
        if self.bin_dir:
            return os.access(os.path.join(self.bin_dir, name), os.X_OK)
        return any(os.access(os.path.join(d, name), os.X_OK)
                   for d in self.env.get("PATH", os.defpath).split(os.pathsep))

    def stream(self, argv):
        return LocalStream(*self._start(argv), pass_fds=self.pass_fds)

    def session(self, argv):
        return LocalSession(*self._start(argv), pass_fds=self.pass_fds)

    def feed(self, argv):
        return LocalFeed(*self._start(argv), pass_fds=self.pass_fds)

    def run(self, argv, input_chunks=None):
        return run_fed(self.feed(argv), input_chunks)


def _drain(stream, buffer):
    for data in iter(lambda: stream.read1(65536), b""):
        buffer.add(data)


class _Collected:
    def __init__(self):
        self.data = bytearray()

    def add(self, data):
        self.data += data


class LocalFeed:
    """A local process we write stdin to while threads collect its stdout and stderr. A process that
    stops reading early (pg_restore --list reads only the table of contents) is not an error here:
    further writes are dropped and its exit code judges it."""

    def __init__(self, argv, env, pass_fds=()):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, pass_fds=pass_fds)
        self._stdin = PipeWriter(self.proc.stdin.fileno())  # written directly, not through proc.stdin's buffer
        self.accepting = True
        self._out = _Collected()
        self._err = BoundedBuffer()
        self._threads = [threading.Thread(target=_drain, args=(self.proc.stdout, self._out), daemon=True),
                         threading.Thread(target=_drain, args=(self.proc.stderr, self._err), daemon=True)]
        for thread in self._threads:
            thread.start()

    def write(self, data):
        if self.accepting:
            try:
                self._stdin.write(data)
            except OSError:
                self.accepting = False

    def finish(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        rc = self.proc.wait()
        for thread in self._threads:
            thread.join()
        return rc, bytes(self._out.data), self._err.text()


def run_fed(feed, input_chunks):
    """Write every chunk to a feed (all of them, even once the process stopped reading, so that the
    chunk source's own checks still run), then finish it: (exit code, stdout, stderr)."""
    try:
        for chunk in input_chunks or ():
            feed.write(chunk)
    except BaseException:
        feed.finish()
        raise
    return feed.finish()
