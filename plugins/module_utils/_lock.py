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


class LockBusy(Exception):
    """Another run holds the lock."""


@contextlib.contextmanager
def exclusive_lock(path, timeout=0, busy_message="another run holds the lock %(path)s"):
    """Hold the lock on ``path`` (created 0600); wait up to ``timeout`` seconds, then raise LockBusy with
    ``busy_message`` (``%(path)s`` and ``%(waited)s`` are filled in). The file records the holder's pid."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
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
