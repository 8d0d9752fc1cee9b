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


def read_frame(kind, stored, start, size, raw, buffer_size=65536):
    source = io.BytesIO(stored)
    source.seek(start)
    return b"".join(bytes(piece) for piece in c.frame_pieces(kind, source, size, raw, bytearray(buffer_size)))


@pytest.mark.parametrize("kind", ["zstd", "none"])
def test_a_frame_is_read_from_where_it_lies_into_one_reused_buffer(kind):
    first, second = compress(kind, DATA[:300000]), compress(kind, DATA[300000:])
    stored = first + second + b"trailing bytes of the next frame"
    assert read_frame(kind, stored, len(first), len(second), len(DATA) - 300000) == DATA[300000:]
    pieces = list(c.frame_pieces(kind, io.BytesIO(first), len(first), 300000, bytearray(4096)))
    assert len(pieces) > 1 and len({id(piece.obj) for piece in pieces}) == 1  # one buffer, overwritten


@pytest.mark.parametrize("kind", ["zstd", "none"])
def test_a_frame_cut_short_or_of_another_size_is_refused(kind):
    packed = compress(kind)
    # the stored file ends inside the frame: zstd's reader alone would end quietly
    with pytest.raises(c.CompressionError, match="the file ends"):
        read_frame(kind, packed[:len(packed) // 2], 0, len(packed), len(DATA))
    # the manifest says another size (a layout that does not match its file)
    with pytest.raises(c.CompressionError, match="not %d" % (len(DATA) + 1)):
        read_frame(kind, packed, 0, len(packed), len(DATA) + 1)


def test_a_damaged_frame_is_refused():
    packed = bytearray(compress("zstd"))
    packed[len(packed) // 2] ^= 0x55
    with pytest.raises(c.CompressionError, match="damaged"):
        read_frame("zstd", bytes(packed), 0, len(packed), len(DATA))
