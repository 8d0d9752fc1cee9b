# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Streaming compression and decompression for backups: zstd (multi-threaded, through the
``zstandard`` library), gzip (zlib) and none, with one writer/reader interface."""

from __future__ import annotations

import zlib

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError

try:
    import zstandard
except ImportError:  # pragma: no cover - modules report it through require_libraries
    zstandard = None

COMPRESSIONS = ("zstd", "gzip", "none")
EXTENSIONS = {"zstd": ".zst", "gzip": ".gz", "none": ""}
# min, max, default. zstd's default is 2, not the library's 3: on realistic dumps level 2 is already
# smaller than gzip -6 and leaves the CPU to pg_dump and the server on small machines (benchmarks/backup.py)
LEVELS = {"zstd": (1, 19, 2), "gzip": (1, 9, 6)}
MAGIC = {b"\x28\xb5\x2f\xfd": "zstd", b"\x1f\x8b": "gzip"}
# Size of the pieces decompression returns (see Decompressor)
OUTPUT_SIZE = 1024 * 1024


class CompressionError(RunbookError):
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

    def end_frame(self):
        pass  # uncompressed: the stored offsets are the archive's own

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

    def end_frame(self):
        """End the frame here: what follows starts a new one, which can be decompressed on its own (a file of
        frames one after the other is one zstd stream to every reader, the zstd program included)."""
        self.writer.flush(zstandard.FLUSH_FRAME)

    def close(self):
        self.writer.close()  # ends the frame; with closefd=False the sink stays open


def compressing_writer(compression, level, sink, threads=-1):
    """A writer that compresses what it is given into ``sink`` (anything with ``write``).
    ``close()`` finishes the stream but leaves ``sink`` open."""
    if compression == "zstd":
        return _ZstdWriter(sink, level or default_level("zstd"), threads)
    if compression == "gzip":
        return _GzipWriter(sink, level or default_level("gzip"))
    return _Passthrough(sink)


class Decompressor:
    """Incremental decompression: ``feed(chunk)`` returns what it could decompress; ``finish()`` raises
    CompressionError when the stream ended early. Damaged data raises CompressionError on the way."""

    def __init__(self, compression):
        self.compression = compression
        if compression == "zstd":
            # output in 1 MiB pieces: the default (128 KiB) pieces, joined per call, made decompression of a
            # backup 1.7x slower (2.5 s instead of 1.5 s for 1 GB, benchmarks/restore.py)
            self._obj = zstandard.ZstdDecompressor().decompressobj(write_size=OUTPUT_SIZE)
        elif compression == "gzip":
            self._obj = zlib.decompressobj(31)
        else:
            self._obj = None

    def feed(self, chunk):
        if self._obj is None or not chunk:
            return chunk
        if self._obj.eof:
            self._next_frame()
        try:
            out = self._obj.decompress(chunk)
            while self._obj.eof and self._obj.unused_data:
                rest = self._obj.unused_data
                self._next_frame()
                out += self._obj.decompress(rest)
        except (zlib.error, zstandard.ZstdError) as exc:
            raise CompressionError("%s data is damaged: %s" % (self.compression, exc))
        return out

    def _next_frame(self):
        """zstd: a backup is a series of frames (see ``_ZstdWriter.end_frame``); gzip: one member only."""
        if self.compression != "zstd":
            raise CompressionError("unexpected data after the end of the %s stream" % self.compression)
        self._obj = zstandard.ZstdDecompressor().decompressobj(write_size=OUTPUT_SIZE)

    def finish(self):
        if self._obj is None:
            return b""
        tail = self._obj.flush() if self.compression == "gzip" else b""
        if not self._obj.eof:
            raise CompressionError("the %s stream is truncated (it ends before its end marker)" % self.compression)
        return tail


class _Slice:
    """``size`` bytes of an open file from where it stands, read by a decompressor (``read``) or directly
    (``readinto``); ``left`` is what was not read."""

    def __init__(self, source, size):
        self.source, self.left = source, size

    def read(self, size=-1):
        data = self.source.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data

    def readinto(self, buffer):
        if not self.left:
            return 0
        got = self.source.readinto(memoryview(buffer)[:self.left])
        self.left -= got
        return got


def frame_pieces(compression, source, size, raw, buffer):
    """One frame of a framed backup (``_archive_layout``): ``size`` stored bytes of ``source`` (an open file
    at the frame's start) decompressed into ``buffer`` again and again. Yields memoryviews of ``buffer``,
    each valid until the next one is asked for (write it first): a fresh bytes object per piece cost
    page faults, 0.4 CPU-seconds per GB restored (a quarter of the decompression itself). Raises
    CompressionError when the frame is damaged, or stored or decompressed bytes are not ``size`` and
    ``raw`` (zstd's reader would end quietly at a frame cut short)."""
    stored = _Slice(source, size)
    reader = stored
    if compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(stored, read_size=OUTPUT_SIZE, read_across_frames=True,
                                                            closefd=False)
    view = memoryview(buffer)
    produced = 0
    try:
        for got in iter(lambda: reader.readinto(buffer), 0):
            produced += got
            yield view[:got]
    except zstandard.ZstdError as exc:
        raise CompressionError("zstd data is damaged: %s" % exc)
    if stored.left or produced != raw:
        raise CompressionError("a frame of %d stored bytes gave %d bytes, not %d%s" % (
            size, produced, raw, " (the file ends %d bytes early)" % stored.left if stored.left else ""))


def decompressed_chunks(compression, chunks):
    """Decompress an iterator of chunks; raises CompressionError on damaged or truncated data."""
    decompressor = Decompressor(compression)
    for chunk in chunks:
        out = decompressor.feed(chunk)
        if out:
            yield out
    tail = decompressor.finish()
    if tail:
        yield tail
