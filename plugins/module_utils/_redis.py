# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Redis's protocol (RESP2), spoken over a plain socket: the managed hosts have no redis client library, and the
few commands the collection sends (PING, INFO, SCAN, UNLINK, FLUSHALL) need none."""

from __future__ import annotations

import socket

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError


class RedisError(RunbookError):
    """Redis refused a command or could not be reached."""


def command_bytes(*words):
    """One command as RESP: an array of bulk strings."""
    parts = [b"$%d\r\n%s\r\n" % (len(w), w) for w in (x if isinstance(x, bytes) else str(x).encode() for x in words)]
    return b"*%d\r\n" % len(words) + b"".join(parts)


def read_reply(reader):
    """The next reply from ``reader`` (a binary file of the socket): str, int, bytes, None or a list."""
    line = reader.readline()
    if not line:
        raise RedisError("redis closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError("redis answered %s" % rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else reader.read(size + 2)[:-2]
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [read_reply(reader) for _item in range(count)]
    raise RedisError("unexpected reply from redis: %r" % line[:40])


class Redis:
    """A connection to one redis server (``host``, ``port``, ``password``, ``db``, ``timeout`` seconds)."""

    def __init__(self, host, port, password=None, db=0, timeout=10):
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise RedisError("cannot reach redis at %s:%s: %s" % (host, port, exc))
        self.reader = self.sock.makefile("rb")
        self.where = "%s:%s" % (host, port)
        if password:
            self.command("AUTH", password)
        if db:
            self.command("SELECT", db)

    def command(self, *words):
        try:
            self.sock.sendall(command_bytes(*words))
            return read_reply(self.reader)
        except OSError as exc:
            raise RedisError("redis at %s: %s" % (self.where, exc))

    def scan(self, pattern, count=1000):
        """Every key matching ``pattern`` (SCAN, so the server is never blocked the way KEYS blocks it)."""
        cursor = b"0"
        while True:
            cursor, keys = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", count)
            yield from keys
            if cursor in (b"0", "0"):
                return

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
