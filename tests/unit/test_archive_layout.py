"""The layout of a custom archive read as it streams by, the frames a backup is cut into, and how a parallel
restore shares them out (pure logic: synthetic archives laid out as pg_dump writes them to a pipe)."""

import hashlib
import io
import random

import pytest
import zstandard

from ansible_collections.stackops.runbook.plugins.module_utils._archive_layout import (
    MIN_FRAME,
    ArchiveLayout,
    FramedWriter,
    TocEntry,
    frame_ranges,
)
from ansible_collections.stackops.runbook.plugins.module_utils._compression import (
    CompressionError,
    Decompressor,
    compressing_writer,
)
from ansible_collections.stackops.runbook.plugins.module_utils._restore import (
    MIN_UNIT,
    _only_on,
    ready_batch,
    table_data_sizes,
    work_units,
)


def pg_int(value):
    return bytes([1 if value < 0 else 0]) + abs(value).to_bytes(4, "little")


def pg_str(text):
    if text is None:
        return pg_int(-1)
    data = text.encode()
    return pg_int(len(data)) + data


def entry(dump_id, desc, section, dependencies=(), had_dumper=0, version=(1, 14), tag=None, namespace="public",
          copy="COPY ... FROM stdin;\n"):
    return (pg_int(dump_id) + pg_int(had_dumper) + pg_str("0") + pg_str("0") + pg_str(tag or "t%d" % dump_id)
            + pg_str(desc) + pg_int(section) + pg_str("CREATE ...;") + pg_str("") + pg_str(copy) + pg_str(namespace)
            + pg_str(None) + pg_str("heap") + (pg_int(114) if version >= (1, 16) else b"") + pg_str("app")
            + pg_str("false") + b"".join(pg_str(str(d)) for d in dependencies) + pg_str(None) + b"\x01" + bytes(8))


def head(version=(1, 14)):
    """An archive's header, up to the number of entries of its table of contents."""
    data = b"PGDMP" + bytes([version[0], version[1], 0, 4, 8, 1])
    data += b"\x00" if version >= (1, 15) else pg_int(0)
    return data + b"".join(pg_int(v) for v in (1, 2, 3, 28, 10, 126, 0)) + pg_str("app") + pg_str("15.18") + pg_str(
        "15.18")


def archive(tables, version=(1, 14), blobs=False):
    """(bytes, toc_end, [(dump id, block start)]): a custom archive of ``tables`` ([rows] each; a row is one
    chunk, as pg_dump -Z0 writes them), table data ids 256 + n (an id with a zero byte)."""
    toc = [entry(100 + n, "TABLE", 2, version=version) for n in range(len(tables))]
    toc += [entry(256 + n, "TABLE DATA", 3, [100 + n], had_dumper=1, version=version) for n in range(len(tables))]
    if blobs:
        toc.append(entry(999, "BLOBS", 3, had_dumper=1, version=version))
    data, blocks = head(version) + pg_int(len(toc)) + b"".join(toc), []
    toc_end = len(data)
    for n, rows in enumerate(tables):
        blocks.append((256 + n, len(data)))
        data += b"\x01" + pg_int(256 + n) + b"".join(pg_int(len(row)) + row for row in rows) + pg_int(0)
    return data, toc_end, blocks


def rows(count, width=40):
    # lengths of 256 and 65536 put zero bytes in the chunk lengths
    return [(b"%d\t" % i).ljust(width, b"x")[:width - 1] + b"\n" for i in range(count)]


TABLES = [rows(3), [], rows(2, 256), rows(5, 65536), rows(40)]


def pieces(data, how):
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i:i + 1] for i in range(len(data))]
    chance, out, pos = random.Random(how), [], 0
    while pos < len(data):
        size = chance.choice([1, 2, 5, 11, 100, 4096, 70000])
        out.append(data[pos:pos + size])
        pos += size
    return out


@pytest.mark.parametrize("how", ["whole", "bytes", 1, 2, 3])
@pytest.mark.parametrize("version", [(1, 14), (1, 15), (1, 16)])
def test_the_layout_is_found_however_the_stream_is_cut(how, version):
    data, toc_end, blocks = archive(TABLES, version)
    layout = ArchiveLayout()
    found = []
    for piece in pieces(data, how):
        found += layout.feed(piece)
    assert layout.finish() == dict(toc_end=toc_end, blocks=[list(b) for b in blocks])
    assert found == [start for _id, start in blocks]
    assert [e.desc for e in layout.entries] == ["TABLE"] * 5 + ["TABLE DATA"] * 5
    assert layout.entries[5] == TocEntry(256, "TABLE DATA", 3, [100])
    # the schema and name of each table whose rows a data block holds (a restore counts them as they are in)
    assert layout.names == {256 + n: (b"public", b"t%d" % (256 + n)) for n in range(5)}


@pytest.mark.parametrize("data, reason", [
    (b"-- PostgreSQL database dump\n", "no PGDMP header"),
    (b"PGDMP\x01\x0d\x00\x04\x08\x01" + bytes(100), "version 1.13"),
    (archive(TABLES, blobs=True)[0], "BLOBS data"),
    (archive(TABLES)[0][:-7], "does not end with the end of a data block"),
    (archive(TABLES)[0][:archive(TABLES)[1] - 3], "inside its table of contents"),
    (archive(TABLES)[0][:archive(TABLES)[2][2][1] + 3], "no data block found for 3"),
])
def test_an_archive_it_cannot_lay_out_is_given_up_with_the_reason(data, reason):
    layout = ArchiveLayout()
    layout.feed(data)
    assert layout.finish() is None
    assert reason in layout.failed


def copy_statements(toc):
    """{data dump id: its COPY statement} of a table of contents, read by ArchiveLayout."""
    layout = ArchiveLayout()
    layout.feed(toc)
    assert layout.toc_end == len(toc) and not layout.failed
    return {dump_id: toc[start + 5:end].decode() for dump_id, (start, end) in layout.copies.items()}, layout


@pytest.mark.parametrize("version", [(1, 14), (1, 16)])
def test_the_rows_of_the_tables_a_job_loads_are_loaded_frozen_and_nothing_else_changes(version):
    odd = '"Odd ""schema"""."it\'s a table"'
    toc = head(version) + pg_int(11) + b"".join([
        entry(100, "TABLE", 2, tag="users", version=version),
        entry(101, "TABLE", 2, tag="it's a table", namespace='Odd "schema"', version=version),
        entry(102, "TABLE", 2, tag="events_2025", version=version),
        entry(103, "TABLE", 2, tag="nothing", version=version),
        entry(104, "EXTENSION", 1, tag="postgis", version=version),
        entry(105, "FOREIGN TABLE", 2, tag="remote", version=version),
        entry(256, "TABLE DATA", 3, [100], 1, version, "users", copy="COPY public.users (id, email) FROM stdin;\n"),
        entry(257, "TABLE DATA", 3, [101], 1, version, "it's a table", 'Odd "schema"',
              copy="COPY %s (id, v) FROM stdin;\n" % odd),
        # a dump made with --load-via-partition-root loads a partition through its partitioned table
        entry(258, "TABLE DATA", 3, [102], 1, version, "events_2025", copy="COPY public.events (id) FROM stdin;\n"),
        # an extension's configuration table (CREATE EXTENSION made it, with rows) and a foreign table
        entry(259, "TABLE DATA", 3, [104], 1, version, "spatial_ref_sys", copy="COPY public.spatial_ref_sys (srid) "
              "FROM stdin;\n"),
        entry(260, "TABLE DATA", 3, [105], 1, version, "remote", copy="COPY public.remote (id) FROM stdin;\n"),
    ])
    before, layout = copy_statements(toc)
    after, again = copy_statements(layout.loading_frozen(toc, [257, 256, 258, 259, 260]))
    assert after[256] == "TRUNCATE ONLY public.users;\nCOPY public.users (id, email) FROM stdin WITH (FREEZE);\n"
    assert after[257] == "TRUNCATE ONLY %s;\nCOPY %s (id, v) FROM stdin WITH (FREEZE);\n" % (odd, odd)
    assert [after[dump_id] for dump_id in (258, 259, 260)] == [before[dump_id] for dump_id in (258, 259, 260)]
    # every entry is read as before: only the statements of the tables asked for changed
    assert again.entries == layout.entries and again.names == layout.names
    assert layout.loading_frozen(toc, [257]).count(b"FREEZE") == 1 and layout.loading_frozen(toc, []) == toc


@pytest.mark.parametrize("statement", [
    "COPY public.users (id) FROM stdin;",  # no newline: not pg_dump's
    "INSERT INTO public.users VALUES (1);\n",
    "COPY public.users (id) FROM stdin WITH (FORMAT binary);\n",
    "COPY other.users (id) FROM stdin;\n",
    "",
])
def test_a_copy_statement_that_is_not_pg_dumps_into_the_entrys_own_table_is_left_as_it_is(statement):
    toc = head() + pg_int(2) + entry(100, "TABLE", 2, tag="users") + entry(
        256, "TABLE DATA", 3, [100], 1, tag="users", copy=statement)
    _statements, layout = copy_statements(toc)
    assert layout.loading_frozen(toc, [256]) == toc


def frames_of(tables, compression, how="whole"):
    data, _toc_end, blocks = archive(tables)
    stored = io.BytesIO()
    compressor = compressing_writer(compression, 3, stored)
    writer = FramedWriter(compressor, stored.tell)
    for piece in pieces(data, how):
        writer.write(piece)
    writer.close()
    compressor.close()
    manifest = dict(layout=writer.layout(), size=stored.tell(), uncompressed_size=len(data), compression=compression)
    return data, blocks, stored.getvalue(), manifest


@pytest.mark.parametrize("compression", ["zstd", "none"])
@pytest.mark.parametrize("how", ["whole", 7])
def test_each_frame_decompresses_on_its_own_and_holds_whole_tables(compression, how):
    big = rows(MIN_FRAME // 1000 + 10, 1000)  # just over a frame's least size
    tables = [rows(3), big, rows(2), rows(4), big, rows(1)]
    data, blocks, stored, manifest = frames_of(tables, compression, how)
    frames = frame_ranges(manifest)
    # the table of contents alone; then a frame ends before a table only once it holds MIN_FRAME: small tables
    # share a frame with the next ones
    assert [f["ids"] for f in frames] == [[], [256, 257], [258, 259, 260], [261]]
    raw_start = 0
    for frame in frames:
        decompressor = Decompressor(compression)
        out = decompressor.feed(stored[frame["start"]:frame["end"]]) + decompressor.finish()
        assert out == data[raw_start:raw_start + frame["raw"]]
        if frame["ids"]:
            assert out.startswith(b"\x01" + pg_int(frame["ids"][0]))
        raw_start += frame["raw"]
    assert raw_start == len(data)
    # one stream to every reader: the frames one after the other decompress to the archive
    decompressor = Decompressor(compression)
    assert b"".join(decompressor.feed(stored[i:i + 65536]) for i in range(0, len(stored), 65536)) + \
        decompressor.finish() == data
    if compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stored), read_across_frames=True)
        assert reader.read() == data


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_the_layout_carries_the_sha256_of_the_first_frame_as_stored(compression):
    """What a restore proves the table of contents against before running its SQL (``toc_sha256``)."""
    data, _toc_end, _blocks = archive([rows(3), rows(MIN_FRAME // 1000 + 10, 1000), rows(2)])
    stored = io.BytesIO()
    compressor = compressing_writer(compression, 3, stored)
    writer = FramedWriter(compressor, stored.tell, lambda: hashlib.sha256(stored.getvalue()).hexdigest())
    for piece in pieces(data, 7):
        writer.write(piece)
    writer.close()
    compressor.close()
    layout = writer.layout()
    first_end = layout["frames"][0][0]
    assert layout["toc_sha256"] == hashlib.sha256(stored.getvalue()[:first_end]).hexdigest()
    assert layout["toc_sha256"] != hashlib.sha256(stored.getvalue()[:first_end + 1]).hexdigest()
    # without a digest of the stored bytes there is nothing to prove against: the key is left out
    assert "toc_sha256" not in frames_of([rows(3), rows(2)], compression)[3]["layout"]


def test_a_stream_that_is_not_an_archive_gets_no_layout_but_is_written_whole():
    stored = io.BytesIO()
    compressor = compressing_writer("zstd", 3, stored)
    writer = FramedWriter(compressor, stored.tell)
    writer.write(b"--\n-- PostgreSQL database dump\n" * 1000)
    writer.close()
    compressor.close()
    assert writer.layout() is None
    decompressor = Decompressor("zstd")
    assert decompressor.feed(stored.getvalue()) + decompressor.finish() == b"--\n-- PostgreSQL database dump\n" * 1000


def test_data_after_the_last_frame_is_damage():
    one = zstandard.ZstdCompressor().compress(b"a" * 1000)
    decompressor = Decompressor("zstd")
    assert decompressor.feed(one + one) == b"a" * 2000
    with pytest.raises(CompressionError):
        decompressor.feed(b"not a frame at all")
    truncated = Decompressor("zstd")
    truncated.feed(one + one[:-4])
    with pytest.raises(CompressionError, match="truncated"):
        truncated.finish()


def test_work_units_gather_consecutive_frames_and_come_largest_first():
    frames = [dict(start=i, raw=size) for i, size in enumerate([10, 20, MIN_UNIT, 30, MIN_UNIT * 3, 5])]
    assert [[f["start"] for f in unit] for unit in work_units(frames, 2)] == [[3, 4], [0, 1, 2], [5]]
    # on a large database a unit is an eighth of a job's share, so each job starts a few pg_restore at most
    many = [dict(start=i, raw=MIN_UNIT) for i in range(64)]
    assert [len(unit) for unit in work_units(many, 2)] == [4] * 16


def test_only_what_depends_on_loaded_tables_is_built_early():
    entries = {e.dump_id: e for e in [
        TocEntry(1, "FUNCTION", 2, []), TocEntry(10, "TABLE", 2, []), TocEntry(11, "TABLE", 2, []),
        TocEntry(20, "INDEX", 4, [10]), TocEntry(21, "CONSTRAINT", 4, [11]), TocEntry(22, "TRIGGER", 4, [10, 1]),
        TocEntry(23, "FK CONSTRAINT", 4, [10, 21]), TocEntry(24, "INDEX", 4, [10, 11]), TocEntry(25, "ACL", 1, [10]),
        TocEntry(26, "INDEX", 4, [10, 20])]}
    early = [i for i in sorted(entries) if _only_on(entries[i], {10}, entries)]
    assert early == [20, 22]  # not: 21 (table 11 not in), 23 (a foreign key), 24 (both tables), 25, 26
    assert [i for i in sorted(entries) if _only_on(entries[i], {10, 11}, entries)] == [20, 21, 22, 24]
    assert not _only_on(None, {10}, entries)


def test_small_tables_indexes_are_built_together_and_a_large_tables_alone():
    """Each batch of indexes is a pg_restore (in a container an exec): a hundred small tables took a hundred.
    Now a batch takes tables until they hold MIN_UNIT of data, so a large table's still come alone and idle
    workers share large tables out."""
    tables = list(range(100, 106))
    entries = {t: TocEntry(t, "TABLE", 2, []) for t in tables}
    entries.update({t + 100: TocEntry(t + 100, "TABLE DATA", 3, [t]) for t in tables})
    entries.update({t + 200: TocEntry(t + 200, "CONSTRAINT", 4, [t]) for t in tables})
    entries.update({t + 300: TocEntry(t + 300, "INDEX", 4, [t]) for t in tables})
    post = ["%d; CONSTRAINT" % (t + 200) for t in tables] + ["%d; INDEX" % (t + 300) for t in tables]
    small = MIN_UNIT // 8
    layout = dict(blocks=[[t + 100, 1000 + i * small] for i, t in enumerate(tables)])
    manifest = dict(layout=layout, uncompressed_size=1000 + 5 * small + 3 * MIN_UNIT)
    sizes = table_data_sizes(manifest, entries)
    assert sizes == {100: small, 101: small, 102: small, 103: small, 104: small, 105: 3 * MIN_UNIT}
    loaded = set(tables) - {104}
    batch, rest = ready_batch(post, entries, loaded, sizes)
    assert batch == ["300; CONSTRAINT", "301; CONSTRAINT", "302; CONSTRAINT", "303; CONSTRAINT", "305; CONSTRAINT",
                     "400; INDEX", "401; INDEX", "402; INDEX", "403; INDEX", "405; INDEX"]
    assert rest == ["304; CONSTRAINT", "404; INDEX"]  # table 104 is still loading
    big_first = ["305; CONSTRAINT", "405; INDEX"] + [line for line in post if line[:3] not in ("305", "405")]
    assert ready_batch(big_first, entries, loaded, sizes)[0] == ["305; CONSTRAINT", "405; INDEX"]
    assert ready_batch(rest, entries, set(tables), sizes) == (rest, [])
