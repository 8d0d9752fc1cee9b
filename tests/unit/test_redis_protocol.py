"""Redis's protocol as the collection speaks it: commands out, every kind of reply in."""

import io

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils import _redis


def test_a_command_is_an_array_of_bulk_strings():
    assert _redis.command_bytes("SCAN", b"0", "COUNT", 1000) == b"*4\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nCOUNT\r\n$4\r\n1000\r\n"


def test_every_kind_of_reply():
    reader = io.BytesIO(b"+OK\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\n0\r\n*1\r\n$9\r\nsession:1\r\n")
    assert _redis.read_reply(reader) == "OK" and _redis.read_reply(reader) == 42
    assert _redis.read_reply(reader) == b"hello" and _redis.read_reply(reader) is None
    assert _redis.read_reply(reader) == [b"0", [b"session:1"]]
    with pytest.raises(_redis.RedisError, match="WRONGPASS"):
        _redis.read_reply(io.BytesIO(b"-WRONGPASS invalid username-password pair\r\n"))
    with pytest.raises(_redis.RedisError, match="closed"):
        _redis.read_reply(io.BytesIO(b""))
