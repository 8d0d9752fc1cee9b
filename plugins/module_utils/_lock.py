# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

An exclusive lock on a file (flock), held for the duration of a ``with`` block, so two runs of the same
operation on the same thing (a backup destination, a compose project) never interleave."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError


class LockError(RunbookError):
    """The lock could not be taken; the message says why and what to do."""


class LockBusy(LockError):
    """Another run holds the lock."""


def _open_lock_file(path):
    """The lock file, created 0600 if missing, never through a symbolic link (a link planted there would
    make us truncate and write whatever it points to)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LockError("the lock file %s is a symbolic link; refusing to follow it. Remove the link (it was "
                            "not made by stackops.runbook) and run again" % path)
        if exc.errno == errno.EROFS:
            raise LockError("cannot create the lock file %s: the file system is read-only. Mount it read-write, or "
                            "choose another directory" % path)
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise LockError("cannot create the lock file %s: permission denied. Run as a user that may write there "
                            "(become), or choose another directory" % path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise LockError("cannot create the lock file %s: no space left. Free space there and run again" % path)
        raise LockError("cannot open the lock file %s: %s" % (path, exc.strerror or exc))


@contextlib.contextmanager
def exclusive_lock(path, timeout=0, busy_message="another run holds the lock %(path)s"):
    """Hold the lock on ``path`` (created 0600); wait up to ``timeout`` seconds, then raise LockBusy with
    ``busy_message`` (``%(path)s`` and ``%(waited)s`` are filled in). The file records the holder's pid."""
    fd = _open_lock_file(path)
    deadline = time.monotonic() + (timeout or 0)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockBusy(busy_message % dict(
                        path=path, waited=" for more than %ss" % timeout if timeout else ""))
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, ("%d\n" % os.getpid()).encode())
        yield
    finally:
        os.close(fd)
