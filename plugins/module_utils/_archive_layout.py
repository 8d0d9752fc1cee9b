# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

The layout of a pg_dump custom archive read as it streams by: where its table of contents ends and where
each data block starts. pg_dump writing to a pipe (as every backup here is written) cannot go back
to record the data offsets in the table of contents, so pg_restore would have to scan the whole archive for
each table; knowing the layout lets a backup cut its compressed stream into frames at the data blocks and a
restore feed each parallel job only its own tables.

Only the archive versions read here (PostgreSQL 12 to 17: 1.14 to 1.16) are laid out; any other, or any
surprise on the way, gives up quietly (``failed``): the archive is then restored the old way.
"""

from __future__ import annotations

import bisect
import collections
import re

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError


MAGIC = b"PGDMP"
KNOWN_VERSIONS = ((1, 14), (1, 15), (1, 16))
ZERO_LENGTH = b"\x00" * 5  # a zero chunk length (sign byte + 4 bytes): the end of a data block
# bytes of a block boundary: the end of the last block, the type and the next dump id (a sign byte + 4)
HOLD = len(ZERO_LENGTH) + 1 + 5


# pg_dump's statement for a table's rows (pg_dump.c dumpTableData: "COPY %s %s FROM stdin;\n", the table's
# schema-qualified name, quoted where needed, then its column list or nothing)
_IDENTIFIER = rb'(?:"(?:[^"]|"")*"|[^\s."]+)'
COPY_FROM_STDIN = re.compile(rb"COPY (%s(?:\.%s)?) (.*) FROM stdin;\n" % (_IDENTIFIER, _IDENTIFIER), re.S)

# pg_dump's sections (pg_backup.h teSection)
SECTION_NONE, SECTION_PRE_DATA, SECTION_DATA, SECTION_POST_DATA = 1, 2, 3, 4

TocEntry = collections.namedtuple("TocEntry", "dump_id desc section dependencies")


class _NeedMore(RunbookError):
    """The bytes so far end inside the item being read (never leaves this file)."""


class _Unknown(RunbookError):
    """Not an archive this reader lays out: the layout is given up."""


class _Reader:
    """pg_dump's integers (a sign byte, then ``int_size`` bytes little-endian) and strings (a length, -1 for
    NULL, then the bytes) from the start of ``data``."""

    def __init__(self, data, int_size):
        self.data, self.pos, self.int_size = data, 0, int_size

    def byte(self):
        if self.pos >= len(self.data):
            raise _NeedMore()
        self.pos += 1
        return self.data[self.pos - 1]

    def skip(self, count):
        if self.pos + count > len(self.data):
            raise _NeedMore()
        self.pos += count

    def int(self):
        end = self.pos + 1 + self.int_size
        if end > len(self.data):
            raise _NeedMore()
        value = int.from_bytes(self.data[self.pos + 1:end], "little")
        negative = self.data[self.pos]
        self.pos = end
        return -value if negative else value

    def string(self):
        length = self.int()
        if length < 0:
            return None
        self.skip(length)
        return self.data[self.pos - length:self.pos]


class ArchiveLayout:
    """Fed a custom archive's bytes in order (``feed``), it finds where the table of contents ends
    (``toc_end``, the offset of the first data block) and where each table's data block starts.

    The header and the table of contents are read field by field (a few hundred kB). The data is not: with
    no compression pg_dump writes every row as a chunk of its own, and reading 10 million chunk headers
    here would cost more than the dump. A block ends with a zero length (five zero bytes) and the next one
    starts with its type (1) and dump id; COPY's text format never holds a zero byte and no chunk length
    has five zero bytes in a row, so "five zero bytes, 1, the next id" is found by ``bytes.find`` at C
    speed. Large objects (binary) could hold that pattern: an archive with them is not laid out. ``failed``
    says why a layout was given up; the archive is then restored the old way."""

    def __init__(self):
        self.toc_end = None
        self.failed = None
        self._version = self._int_size = self._off_size = None
        self._head = b""  # what is not read yet of the header and table of contents
        self._head_start = 0  # the archive offset of _head[0]
        self._entries_left = None
        self._expected = collections.deque()  # dump ids of the data blocks still to come, in order
        self._tail = b""  # the last bytes of the data seen, where a block boundary may start
        self.total = 0  # bytes fed so far
        self.starts = []  # (dump id, offset) of every data block found
        self.entries = []  # the table of contents (TocEntry), once read
        self.by_id = {}  # dump id -> its TocEntry
        self.names = {}  # dump id -> (schema, name) as bytes, of each data entry (a table's)
        self.copies = {}  # dump id -> (start, end) of each data entry's COPY statement (length and bytes)

    def feed(self, data):
        """Read ``data``, the archive's next bytes; returns the offsets at which data blocks start in the
        bytes fed so far that were not returned before (each at most ``HOLD`` bytes behind the end)."""
        if self.failed or not data:
            self.total += len(data)
            return []
        before = len(self.starts)
        try:
            if self.toc_end is None:
                self._head += data
                self.total += len(data)
                self._read_head_and_toc()
            else:
                self._find_blocks(data)
        except _Unknown as exc:
            self.failed = str(exc)
            self._head = self._tail = b""
        return [offset for _dump_id, offset in self.starts[before:]] if not self.failed else []

    def finish(self):
        """The layout (``toc_end`` and ``blocks``: [dump id, start] of each data block, in the archive's
        order) or None when it is not known (``failed`` says why)."""
        if not self.failed:
            if self.toc_end is None:
                self.failed = "the archive ends inside its table of contents"
            elif self._expected:
                self.failed = "no data block found for %d of the archive's entries" % len(self._expected)
            elif self.starts and not self._tail.endswith(ZERO_LENGTH):
                self.failed = "the archive does not end with the end of a data block"
        if self.failed:
            return None
        return dict(toc_end=self.toc_end, blocks=[[dump_id, start] for dump_id, start in self.starts])

    def _read_head_and_toc(self):
        """Read what is complete of the header and the entries; each one read is dropped from ``_head``,
        so a table of contents that comes in many pieces is still read once."""
        if self._version is None:
            if len(self._head) < 11:
                return
            if self._head[:5] != MAGIC:
                raise _Unknown("not a custom archive (no PGDMP header)")
            version = (self._head[5], self._head[6])
            if version not in KNOWN_VERSIONS:
                raise _Unknown("archive version %d.%d is not one this reader lays out" % version)
            if self._head[10] != 1:
                raise _Unknown("not a custom-format archive")
            self._int_size, self._off_size = self._head[8], self._head[9]
            reader = _Reader(self._head, self._int_size)
            try:
                reader.skip(11)
                reader.byte() if version >= (1, 15) else reader.int()  # compression algorithm / level
                for _field in range(7):  # creation time
                    reader.int()
                for _field in range(3):  # database name, server version, pg_dump version
                    reader.string()
                self._entries_left = reader.int()
            except _NeedMore:
                return
            self._version = version
            self._commit(reader)
        while self._entries_left:
            reader = _Reader(self._head, self._int_size)
            try:
                self._read_entry(reader)
            except _NeedMore:
                return
            self._entries_left -= 1
            self._commit(reader)
        self.toc_end = self._head_start
        rest, self._head = self._head, b""
        self.total = self.toc_end
        self._tail = ZERO_LENGTH  # the first block follows the table of contents directly
        self._find_blocks(rest)

    def _commit(self, reader):
        self._head = self._head[reader.pos:]
        self._head_start += reader.pos

    def _read_entry(self, reader):
        dump_id = reader.int()
        had_dumper = reader.int()
        reader.string()  # table oid
        reader.string()  # oid
        tag = reader.string()
        desc = reader.string()
        section = reader.int()
        for _field in range(2):  # definition, drop statement
            reader.string()
        copy_start = self._head_start + reader.pos
        reader.string()  # copy statement
        copy_end = self._head_start + reader.pos
        namespace = reader.string()
        for _field in range(2):  # tablespace, table AM
            reader.string()
        if self._version >= (1, 16):
            reader.int()  # relkind
        reader.string()  # owner
        reader.string()  # "false": tables WITH OIDS
        dependencies = []
        while True:  # ended by a NULL string
            dependency = reader.string()
            if dependency is None:
                break
            dependencies.append(int(dependency))
        reader.skip(1 + self._off_size)  # the data offset: not set when written to a pipe
        entry = TocEntry(dump_id, desc.decode("utf-8", "replace"), section, dependencies)
        self.entries.append(entry)
        self.by_id[dump_id] = entry
        if had_dumper:
            self.names[dump_id] = (namespace, tag)
            self.copies[dump_id] = (copy_start, copy_end)
            if desc != b"TABLE DATA":
                raise _Unknown("the archive holds %s data (only table data is laid out)"
                               % desc.decode("utf-8", "replace"))
            self._expected.append(dump_id)

    def loading_frozen(self, toc, dump_ids):
        """The table of contents ``toc`` (the archive's first ``toc_end`` bytes, all fed to this reader) with the
        rows of each data entry of ``dump_ids`` loaded frozen: its ``COPY t (...) FROM stdin;`` becomes
        ``TRUNCATE ONLY t; COPY t (...) FROM stdin WITH (FREEZE);``. pg_restore sends an entry's COPY statement to
        the server as one query, so both run in one transaction, which is what FREEZE needs (the table emptied
        or made in it); the table, just made by pre-data, is empty. See ``frozen_copy`` for the entries left as
        they are."""
        parts, pos = [], 0
        for dump_id in sorted(dump_ids, key=lambda dump_id: self.copies.get(dump_id, (0, 0))):
            frozen = self.frozen_copy(dump_id, toc)
            if frozen is None:
                continue
            start, end = self.copies[dump_id]
            parts += [toc[pos:start], self._int_bytes(len(frozen)), frozen]
            pos = end
        parts.append(toc[pos:])
        return b"".join(parts)

    def frozen_copy(self, dump_id, toc):
        """The statements that load data entry ``dump_id``'s rows frozen, or None where that is not safe or
        not known: a statement that is not pg_dump's COPY into the entry's own table (a dump made with
        --load-via-partition-root loads a partition's rows through its partitioned table, where FREEZE is
        refused), or rows of a table that is not a plain table of the archive (an extension's configuration
        table, made with rows of its own by CREATE EXTENSION; a foreign table, whose TRUNCATE would empty the
        remote one)."""
        if dump_id not in self.copies or not tables_of(self.by_id, dump_id):
            return None
        start, end = self.copies[dump_id]
        statement = toc[start + 1 + self._int_size:end]
        match = COPY_FROM_STDIN.fullmatch(statement)
        if not match or _unquoted(match.group(1)) != self.names[dump_id]:
            return None
        return b"TRUNCATE ONLY %s;\n%s WITH (FREEZE);\n" % (match.group(1), statement[:-2])

    def _int_bytes(self, value):
        """``value`` (0 or more) as the archive writes an int: a sign byte, then ``int_size`` bytes."""
        return b"\x00" + value.to_bytes(self._int_size, "little")

    def _find_blocks(self, data):
        """Block starts in ``data`` (after ``_tail``, the previous bytes' last ``HOLD``)."""
        window = self._tail + data
        base = self.total - len(self._tail)
        pos = 0
        while self._expected:
            marker = ZERO_LENGTH + b"\x01" + self._int_bytes(self._expected[0])
            found = window.find(marker, pos)
            if found < 0:
                break
            self.starts.append((self._expected.popleft(), base + found + len(ZERO_LENGTH)))
            pos = found + len(ZERO_LENGTH)
        self.total += len(data)
        self._tail = window[-HOLD:]


def tables_of(entries, dump_id):
    """The dump ids of the TABLE entries that entry ``dump_id`` depends on: for a data entry, the table whose
    rows it holds (none for an extension's configuration table or a foreign table). ``entries``: {dump id:
    TocEntry}."""
    entry = entries.get(dump_id)
    return [table for table in entry.dependencies if table in entries and entries[table].desc == "TABLE"] if entry else []


def _unquoted(name):
    """(schema, name) of a schema-qualified name as pg_dump writes it (each part quoted where needed); a name
    with no schema gives (None, name)."""
    parts = [part[1:-1].replace(b'""', b'"') if part.startswith(b'"') else part
             for part in re.findall(_IDENTIFIER, name)]
    return tuple(parts) if len(parts) == 2 else (None, parts[0])


# A frame ends at a data block only once it holds this much: small tables share a frame, so an archive of
# thousands of tables does not become thousands of frames (each costs the compressor its window).
MIN_FRAME = 1024 * 1024


class FramedWriter:
    """Passes a custom archive to a compressing ``writer`` (``write``, ``end_frame``), ending the compressed
    frame where the table of contents ends and before data blocks, so that each frame decompresses on its
    own and holds whole blocks. ``compressed_size`` tells how many compressed bytes the writer has put out,
    ``stored_sha256`` (optional) the sha256 of them. ``layout()`` (after the last write) is what a restore
    needs to find each table's data: ``toc_end``, ``frames`` ([compressed offset, archive offset] where each
    frame after the first starts), ``blocks`` ([dump id, archive offset]) and with ``stored_sha256``
    ``toc_sha256``, the sha256 of the first frame as stored: a restore that proves it can run the table of
    contents' SQL before the whole file is hashed. None when the archive was not one ``ArchiveLayout`` lays
    out. The last ``HOLD`` bytes are held back until the next write (a block boundary may begin in them)."""

    def __init__(self, writer, compressed_size, stored_sha256=None):
        self.writer, self.compressed_size, self.stored_sha256 = writer, compressed_size, stored_sha256
        self.reader = ArchiveLayout()
        self.frames = []
        self.toc_sha256 = None
        self._held = b""  # bytes not yet passed on, from archive offset _offset
        self._offset = 0
        self._frame_start = 0
        self._view, self._pos = memoryview(b""), 0

    def write(self, data):
        starts = self.reader.feed(data)
        self._view, self._pos = memoryview(data), 0
        for start in starts:
            if start < self._offset:  # cannot happen (HOLD covers a boundary): never record a wrong offset
                self.reader.failed = "a data block was found after its start was written"
                break
            if start == self.reader.toc_end or start - self._frame_start >= MIN_FRAME:
                self._pass_on(start)
                self.writer.end_frame()
                if not self.frames and self.stored_sha256 is not None:
                    self.toc_sha256 = self.stored_sha256()
                self.frames.append([self.compressed_size(), start])
                self._frame_start = start
        self._pass_on(self.reader.total - HOLD)
        self._held += bytes(self._view[self._pos:])
        self._view = memoryview(b"")
        return len(data)

    def close(self):
        """Pass on what is held; the writer is left to its owner."""
        self.writer.write(self._held)
        self._offset += len(self._held)
        self._held = b""

    def layout(self):
        found = self.reader.finish()
        if not found:
            return None
        return dict(found, frames=self.frames, toc_sha256=self.toc_sha256) if self.toc_sha256 else dict(
            found, frames=self.frames)

    def _pass_on(self, until):
        """Pass on the bytes from ``_offset`` up to archive offset ``until``: the held ones, then this write's."""
        if until <= self._offset:
            return
        if self._held:
            taken = self._held[:until - self._offset]
            self.writer.write(taken)
            self._held = self._held[len(taken):]
            self._offset += len(taken)
        count = until - self._offset
        if count > 0:
            self.writer.write(self._view[self._pos:self._pos + count])
            self._pos += count
            self._offset += count


def frame_ranges(manifest):
    """The frames of a backup written by ``FramedWriter`` (its manifest's ``layout``): for each, where it
    lies in the stored file (``start``, ``end``), its size once decompressed (``raw``) and the dump ids of
    the data blocks it holds (``ids``). The first frame is the header and table of contents."""
    layout = manifest["layout"]
    starts = [[0, 0]] + layout["frames"]
    ends = layout["frames"] + [[manifest["size"], manifest["uncompressed_size"]]]
    frames = [dict(start=start[0], end=end[0], raw=end[1] - start[1], ids=[]) for start, end in zip(starts, ends)]
    archive_starts = [start[1] for start in starts]
    for dump_id, block_start in layout["blocks"]:
        frames[bisect.bisect_right(archive_starts, block_start) - 1]["ids"].append(dump_id)
    return frames
