"""Streaming compression and the detection of damaged or truncated data."""

import io
import os

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils import _compression as c

DATA = b"".join(b"COPY public.users (id, name) FROM stdin;\n%d\t%s\n" % (i, os.urandom(8).hex().encode())
                for i in range(20000))


def compress(kind, data=DATA, level=None):
    sink = io.BytesIO()
    writer = c.compressing_writer(kind, level, sink)
    for start in range(0, len(data), 65536):
        writer.write(data[start:start + 65536])
    writer.close()
    return sink.getvalue()


def chunks(data, size=4096):
    return (data[i:i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("kind", c.COMPRESSIONS)
def test_every_compression_round_trips(kind):
    packed = compress(kind)
    assert b"".join(c.decompressed_chunks(kind, chunks(packed))) == DATA
    assert c.detect(packed[:4]) == kind
    if kind != "none":
        assert len(packed) < len(DATA) / 2


@pytest.mark.parametrize("kind", ["zstd", "gzip"])
def test_a_truncated_stream_is_detected(kind):
    packed = compress(kind)
    with pytest.raises(c.CompressionError, match="truncated"):
        b"".join(c.decompressed_chunks(kind, chunks(packed[:len(packed) // 2])))


@pytest.mark.parametrize("kind", ["zstd", "gzip"])
def test_a_flipped_byte_is_detected(kind):
    packed = bytearray(compress(kind))
    packed[len(packed) // 2] ^= 0x55
    with pytest.raises(c.CompressionError):
        b"".join(c.decompressed_chunks(kind, chunks(bytes(packed))))


def test_levels_are_checked_per_compression():
    assert c.check_level("zstd", 19) is None
    assert "out of range for zstd: use 1 to 19" in c.check_level("zstd", 20)
    assert "out of range for gzip: use 1 to 9" in c.check_level("gzip", 0)
    assert "no meaning with compression=none" in c.check_level("none", 1)
    assert c.check_level("gzip", None) is None


def test_higher_levels_compress_smaller():
    assert len(compress("zstd", level=19)) < len(compress("zstd", level=1))
