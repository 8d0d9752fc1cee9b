# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming compression and decompression for backups: zstd (multi-threaded, through the
``zstandard`` library), gzip (zlib) and none, with one writer/reader interface."""

from __future__ import annotations

import traceback
import zlib

ZSTD_IMPORT_ERROR = None
try:
    import zstandard
except ImportError:  # pragma: no cover - reported through missing_required_lib
    zstandard = None
    ZSTD_IMPORT_ERROR = traceback.format_exc()

COMPRESSIONS = ("zstd", "gzip", "none")
EXTENSIONS = {"zstd": ".zst", "gzip": ".gz", "none": ""}
LEVELS = {"zstd": (1, 19, 3), "gzip": (1, 9, 6)}  # min, max, default
MAGIC = {b"\x28\xb5\x2f\xfd": "zstd", b"\x1f\x8b": "gzip"}


class CompressionError(Exception):
    """Compressed data is damaged or truncated."""


def check_level(compression, level):
    """Return an error message for a level that does not fit the compression, else None."""
    if level is None:
        return None
    if compression == "none":
        return "compression_level=%s has no meaning with compression=none; leave it out" % level
    low, high, _default = LEVELS[compression]
    if not low <= level <= high:
        return "compression_level=%s is out of range for %s: use %d to %d" % (level, compression, low, high)
    return None


def default_level(compression):
    return LEVELS[compression][2] if compression in LEVELS else None


def detect(first_bytes):
    """The compression of a file from its first bytes."""
    for magic, name in MAGIC.items():
        if first_bytes.startswith(magic):
            return name
    return "none"


class _Passthrough:
    def __init__(self, sink):
        self.sink = sink

    def write(self, data):
        self.sink.write(data)

    def close(self):
        pass


class _GzipWriter:
    def __init__(self, sink, level):
        self.sink = sink
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, 31)

    def write(self, data):
        out = self.compressor.compress(data)
        if out:
            self.sink.write(out)

    def close(self):
        self.sink.write(self.compressor.flush())


class _ZstdWriter:
    def __init__(self, sink, level, threads):
        params = zstandard.ZstdCompressionParameters.from_level(level, threads=threads, write_checksum=1)
        self.writer = zstandard.ZstdCompressor(compression_params=params).stream_writer(sink, closefd=False)

    def write(self, data):
        self.writer.write(data)

    def close(self):
        self.writer.flush(zstandard.FLUSH_FRAME)
        self.writer.close()


def compressing_writer(compression, level, sink, threads=-1):
    """A writer that compresses what it is given into ``sink`` (anything with ``write``).
    ``close()`` finishes the stream but leaves ``sink`` open."""
    if compression == "zstd":
        return _ZstdWriter(sink, level or default_level("zstd"), threads)
    if compression == "gzip":
        return _GzipWriter(sink, level or default_level("gzip"))
    return _Passthrough(sink)


def decompressed_chunks(compression, chunks):
    """Decompress an iterator of chunks; raises CompressionError on damaged or truncated data."""
    if compression == "none":
        yield from chunks
        return
    if compression == "zstd":
        dobj = zstandard.ZstdDecompressor().decompressobj()
    else:
        dobj = zlib.decompressobj(31)
    try:
        for chunk in chunks:
            out = dobj.decompress(chunk)
            if out:
                yield out
            if compression == "gzip" and dobj.eof and dobj.unused_data:
                raise CompressionError("unexpected data after the end of the gzip stream")
        if compression == "gzip":
            tail = dobj.flush()
            if tail:
                yield tail
            if not dobj.eof:
                raise CompressionError("the gzip stream is truncated (it ends before its trailer)")
        elif not dobj.eof:
            raise CompressionError("the zstd stream is truncated (its last frame is incomplete)")
    except (zlib.error, zstandard.ZstdError) as exc:
        raise CompressionError("%s data is damaged: %s" % (compression, exc))
