# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Restoring a backup (found and checked by ``_backups``) into a database: what pg_restore and restore_drill
share. Restores stream from the storage through decompression into psql or pg_restore.
"""

from __future__ import annotations

import collections
import io
import itertools
import json
import os
import queue
import re
import shutil
import tempfile
import threading
import time

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils._age import identity_options_error
from ansible_collections.stackops.runbook.plugins.module_utils._archive_layout import (
    SECTION_DATA,
    SECTION_NONE,
    SECTION_POST_DATA,
    SECTION_PRE_DATA,
    ArchiveLayout,
    frame_ranges,
    tables_of,
)
from ansible_collections.stackops.runbook.plugins.module_utils._compression import (
    decompressed_chunks,
    frame_pieces,
)
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import PsqlSession, ident, literal, psql_argument


# Room left beside a seekable copy of an archive (for the filesystem's own needs and pg_restore's).
SEEKABLE_MARGIN = 64 * 1024 * 1024
# A new file only its owner reads, written from stdin where the programs run (in a container: no Python there).
PRIVATE_FILE = ["sh", "-c", 'umask 077 && cat > "$1"', "sh"]
# Pieces in which a frame is read from the stored file.
READ_SIZE = 1024 * 1024


def default_jobs():
    """Parallel restore jobs when the caller names none: the CPUs here, at most 4 (past that the server's disks,
    not pg_restore, set the pace on the stacks this collection serves)."""
    return max(1, min(4, os.cpu_count() or 1))


def restore_argument_spec():
    """How a database backup is restored (doc fragment: restore): ``jobs``."""
    return dict(jobs=dict(type="int"))


def restore_options_error(params):
    """What is wrong with the restore options of ``params`` (``jobs``, the age identity): a message naming
    the option, or None."""
    if params["jobs"] is not None and params["jobs"] < 1:
        return "jobs=%s must be 1 or more (1 restores as one stream)" % params["jobs"]
    return identity_options_error(params)


def restore_into(runner, storage, manifest, database, jobs=None, no_owner=False, selection=(), workdir=None,
                 seekable=None, check=None):
    """Restore a backup into ``database`` (which exists and is empty); ``selection`` adds pg_restore options
    (sections, tables) for archives. Archives are restored with ``jobs`` parallel jobs; a compressed custom
    archive needs a seekable copy for that: ``seekable``, made while the backup was checked (see
    ``SeekableArchive`` and ``_backups.checked_copy``), or made here. The copy is removed afterwards.
    ``check`` (``_backups.DigestCheck``) is the backup's check still running: a framed restore proves the
    table of contents with it and returns only once it has passed; any other waits for it first.
    Returns how it restored: ``jobs`` (1 for one stream), when it could not run in parallel for want of
    room a ``warning`` saying so, and from a framed restore the database's ``row_counts`` (those of
    ``PsqlSession.row_counts("exact")``, taken while it restored: see ``RowCounter``)."""
    fmt = manifest["format"]
    jobs = jobs or default_jobs()
    owner = ["--no-owner", "--no-privileges"] if no_owner else []
    selection = list(selection)
    restore = ["pg_restore", "--exit-on-error", "--no-password", "-d", database] + owner + selection
    parallel = ["--jobs=%d" % jobs] if jobs > 1 and not selection else []
    how = dict(jobs=jobs if parallel else 1)
    in_frames = bool(parallel) and framed(manifest)
    if check is not None and not in_frames:
        check.verdict()
    if fmt == "plain":
        argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-password", "-d", database]
        chunks = decompressed_chunks(manifest["compression"], storage.open_chunks(manifest["file"]))
        rc, _out, err = runner.run(argv, input_chunks=chunks)
    elif in_frames:
        counter = RowCounter(runner, database)
        try:
            FramedRestore(runner, storage, manifest, restore, jobs, counter, workdir, check).run()
            how["row_counts"] = counter.finish()
        finally:
            counter.close()
        return how
    elif fmt == "custom":
        archive = None
        if parallel:
            archive = seekable if seekable is not None else SeekableArchive(runner, manifest, workdir)
        if archive and archive.make(storage):
            argv = restore + parallel
            try:
                rc, _out, err = runner.run(argv + [archive.path])
            finally:
                archive.remove()
        else:
            argv = restore
            how = dict(jobs=1, warning=archive.no_room) if archive and archive.no_room else dict(jobs=1)
            chunks = decompressed_chunks(manifest["compression"], storage.open_chunks(manifest["file"]))
            rc, _out, err = runner.run(argv, input_chunks=chunks)
    else:
        argv = restore + parallel
        source = storage.path(manifest["file"])
        scratch = RestoreScratch(runner, workdir) if runner.kind == "container" else None
        try:
            if scratch is not None:
                source = scratch.put_directory(source)
            rc, _out, err = runner.run(argv + [source])
        finally:
            if scratch is not None:
                scratch.remove()
    if rc != 0:
        raise CommandError(argv, rc, err)
    return how


def framed(manifest):
    """Whether the backup is a custom archive cut into frames at its tables' data (``_archive_layout``,
    pg_backup's default since 0.2.0), which parallel jobs restore straight from the stored file."""
    return (manifest.get("format") == "custom" and bool(manifest.get("layout"))
            and manifest.get("compression") in ("zstd", "none"))


def reads_in_frames(manifest, jobs):
    """Whether a whole restore of ``manifest`` with ``jobs`` (None: the default) reads it frame by frame."""
    return framed(manifest) and (jobs or default_jobs()) > 1


class FramedRestore:
    """A parallel restore of a framed custom archive, with no copy of it. pg_restore's own parallel mode
    needs a seekable uncompressed file (the 1 GB copy of the benchmark database cost more than the restore
    gained, 1.74x the directory archive's restore); here the stored file is read where it is, each frame
    decompressed on its own, and the restore runs in pg_restore's three sections:

    - pre-data (tables, types, functions) from the table of contents alone (the first frame, a small file
      where pg_restore runs);
    - data: ``jobs`` workers take units of consecutive frames, the largest first, and give each to a
      pg_restore reading stdin: the table of contents, then the unit's frames (pg_restore reads a stream's
      data blocks in order, and a unit holds them in the archive's order). While some workers still load,
      the others build the indexes, primary keys and triggers of the tables already in, as pg_restore's
      own parallel mode does;
    - sequence values and the rest of post-data (foreign keys, privileges, ...) with ``--jobs``.

    Each table's rows are counted (``counter``, a ``RowCounter``) once its data is in, by a worker with
    nothing else to do or beside the final pass, not after it.

    Any step that fails fails the restore (its target is a scratch database the caller drops). With a
    ``check`` (``_backups.DigestCheck``) of the stored file still running, the first frame is proven against
    the manifest before pre-data runs it, and ``run`` returns only once the whole file has passed; a step
    that failed on a damaged file fails with the check's DamagedBackup, which says so."""

    def __init__(self, runner, storage, manifest, restore, jobs, counter, workdir=None, check=None):
        self.runner, self.manifest, self.restore, self.jobs = runner, manifest, restore, jobs
        self.file_check, self.counter = check, counter
        self.path = storage.path(manifest["file"])
        self.frames = frame_ranges(manifest)
        self.scratch = RestoreScratch(runner, workdir)
        self.toc = None
        self.entries = {}
        self._units = collections.deque()
        self._post = []  # post-data lines of pg_restore --list not built yet
        self._loaded = set()  # dump ids of the tables whose data is in
        self._loading = 0  # workers in a data unit
        self._failure = None
        self._changed = threading.Condition()
        self._toc_bytes = b""  # the first frame: header and table of contents (names and definitions, no rows)
        self._order = {}  # dump id -> place in the table of contents
        self._data_sizes = {}  # table dump id -> bytes of its rows in the archive
        self._names = {}  # data dump id -> (schema, table) whose rows it holds
        self._layout = None  # the ArchiveLayout of the table of contents
        self._uncounted = []  # (schema, table) of the tables whose data is in, not counted yet

    def run(self):
        try:
            first = self.frames[0]
            with open(self.path, "rb") as source:
                source.seek(first["start"])
                stored = source.read(first["end"] - first["start"])  # proven and decompressed from the same bytes
            if self.file_check is not None:
                self.file_check.first_frame(stored)
            try:
                self._restore(stored)
            except Exception:
                if self.file_check is not None:
                    self.file_check.verdict()  # a damaged file is why the step failed: say that
                raise
            if self.file_check is not None:
                self.file_check.verdict()
        finally:
            self.scratch.remove()

    def _restore(self, stored_toc):
        self._toc_bytes = b"".join(bytes(piece) for piece in frame_pieces(
            self.manifest["compression"], io.BytesIO(stored_toc), len(stored_toc), self.frames[0]["raw"],
            bytearray(READ_SIZE)))
        self.toc = self.scratch.put("toc.dump", [self._toc_bytes])
        self.check(self.restore + ["--section=pre-data", self.toc])
        self.entries = self.toc_entries()
        self._data_sizes = table_data_sizes(self.manifest, self.entries)
        sections = section_lines(self.entries.values())
        self._post = sections[SECTION_POST_DATA]
        sequence_values = [line for line in sections[SECTION_DATA] if not line.endswith("; TABLE DATA")]
        self._units.extend(work_units(self.frames[1:], self.jobs))
        workers = [threading.Thread(target=self._work, daemon=True)
                   for _worker in range(min(self.jobs, len(self._units)))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if self._failure is not None:
            raise self._failure
        rest = sequence_values + self._post
        counting = _Background(self.counter.count, self._uncounted)  # the last tables in, beside the final pass
        try:
            if rest:
                self.check(self.restore + ["--section=data", "--section=post-data", "--jobs=%d" % self.jobs, "-L",
                                           self.put_list("rest.list", rest), self.toc])
        except BaseException:
            counting.wait()  # the pass's failure is the one to tell
            raise
        counting.join()

    def _work(self):
        """A worker: data units while there are any; then, while others still load, what is ready to build."""
        while True:
            unit = batch = tables = None
            with self._changed:
                while unit is None and batch is None and tables is None:
                    if self._failure is not None:
                        return
                    if self._units:
                        unit = self._units.popleft()
                        self._loading += 1
                    elif not self._loading:
                        return  # nobody loads: what is left goes to the final parallel pass
                    else:
                        batch = self._ready() or None
                        if batch is None and self._uncounted:
                            tables, self._uncounted = self._uncounted, []
                        elif batch is None:
                            self._changed.wait()
            try:
                if unit is not None:
                    self._load(unit)
                elif batch is not None:
                    self.check(self.restore + ["--section=post-data", "-L", self.put_list(
                        "post-data-%d.list" % _dump_id(batch[0]), batch), self.toc])
                else:
                    self.counter.count(tables)
            except BaseException as exc:  # pylint: disable=broad-except
                with self._changed:
                    self._failure = self._failure or exc  # raised by run(), in the module's thread
            with self._changed:
                if unit is not None:
                    self._loading -= 1
                    self._loaded.update(self._tables(unit))
                    self._uncounted.extend(self._names[dump_id] for frame in unit for dump_id in frame["ids"]
                                           if dump_id in self._names)
                self._changed.notify_all()

    def _load(self, unit):
        """One pg_restore of a unit's tables (pg_restore reads only the dump id of a list file's lines), each
        table's rows loaded frozen (``ArchiveLayout.loading_frozen``). Rows copied in the usual way are
        written once, then each page again when the first reader sets their hint bits (here the index
        builds and the row counts), and once more when a vacuum freezes them; rows loaded frozen are
        written once and are visible to all from the start. Only this restore's scratch database sees them
        before it is done, so FREEZE's one caveat (rows visible to snapshots older than the load) cannot
        matter. The benchmark's default backup restored 0.4-0.6 s faster into a container (of 10-11 s),
        0.6-1.3 machine CPU-seconds less."""
        ids = sorted((dump_id for frame in unit for dump_id in frame["ids"]), key=self._order.get)
        argv = self.restore + ["--section=data", "-L", self.put_list("data-%d.list" % ids[0], [
            "%d; TABLE DATA" % dump_id for dump_id in ids])]
        feed = self.scratch.feed(argv)
        error = None
        try:
            buffer = bytearray(READ_SIZE)
            toc = self._layout.loading_frozen(self._toc_bytes, ids)
            for data in itertools.chain([toc], *(self.pieces(frame, buffer) for frame in unit)):
                if not feed.accepting:
                    break  # pg_restore stopped: its exit code says why
                feed.write(data)
        except BaseException as exc:  # pylint: disable=broad-except
            error = exc
        rc, _out, err = feed.finish()
        if error is not None:
            raise error
        if rc != 0:
            raise CommandError(argv, rc, err)

    def _ready(self):
        """The post-data lines now buildable (and no longer in ``_post``): see ``ready_batch``."""
        ready, self._post = ready_batch(self._post, self.entries, self._loaded, self._data_sizes)
        return ready

    def _tables(self, unit):
        return {table for frame in unit for dump_id in frame["ids"] for table in tables_of(self.entries, dump_id)}

    def put_list(self, name, lines):
        return self.scratch.put(name, [("\n".join(lines) + "\n").encode()])

    def toc_entries(self):
        reader = self._layout = ArchiveLayout()
        reader.feed(self._toc_bytes)
        self._order = {entry.dump_id: number for number, entry in enumerate(reader.entries)}
        names = ((dump_id, _text_name(pair)) for dump_id, pair in reader.names.items())
        self._names = {dump_id: name for dump_id, name in names if name}
        return reader.by_id

    def pieces(self, frame, buffer):
        """The decompressed bytes of one frame, read from the stored file into ``buffer`` (see
        ``_compression.frame_pieces``: each piece is overwritten by the next)."""
        with open(self.path, "rb") as source:
            source.seek(frame["start"])
            yield from frame_pieces(self.manifest["compression"], source, frame["end"] - frame["start"], frame["raw"],
                                    buffer)

    def check(self, argv):
        rc, _out, err = self.runner.run(argv)
        if rc != 0:
            raise CommandError(argv, rc, err)


def _text_name(pair):
    """(schema, table) of an archive's bytes as text, or None where they are not UTF-8 (such a table is
    counted with the rest, by ``RowCounter.finish``)."""
    try:
        return tuple(part.decode("utf-8") for part in pair)
    except (AttributeError, UnicodeDecodeError):
        return None


class _Background:
    """``function(*args)`` in a thread; ``join`` waits for it and raises what it raised."""

    def __init__(self, function, *args):
        self._failure = None
        self._thread = threading.Thread(target=self._run, args=(function,) + args, daemon=True)
        self._thread.start()

    def _run(self, function, *args):
        try:
            function(*args)
        except BaseException as exc:  # pylint: disable=broad-except
            self._failure = exc  # raised by join(), in the caller's thread

    def wait(self):
        self._thread.join()

    def join(self):
        self.wait()
        if self._failure is not None:
            raise self._failure


class RowCounter:
    """The exact row counts of a database being restored, table by table as their data is in, on a psql
    session of its own (opened at the first count) while the restore goes on: counted after it, every
    table's scan came after the last step (0.28 of 12.4 s of the benchmark's restore into a container).
    A table counted once its data is in keeps that count: what follows (indexes, constraints, triggers,
    sequence values) adds no rows. The counts are those of ``PsqlSession.row_counts("exact")`` (the same
    tables, the same keys); ``finish`` counts the tables not counted yet (those with no data in the
    archive, or not named in UTF-8)."""

    def __init__(self, runner, database):
        self.runner, self.database = runner, database
        self.counts = {}
        self._session = None
        self._lock = threading.Lock()  # one query at a time on the session: idle workers may both count

    def count(self, tables):
        """Count ``tables`` ((schema, table) pairs)."""
        if tables:
            with self._lock:
                self.counts.update(self._open().row_counts("exact", tables=tables))

    def finish(self):
        """The counts of every user table of the database."""
        with self._lock:
            self.counts.update(self._open().row_counts("exact", leaving_out=sorted(self.counts)))
        return dict(self.counts)

    def _open(self):
        if self._session is None:
            self._session = PsqlSession(self.runner, self.database)
        return self._session

    def close(self):
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None


# What may be built on tables as soon as their data is in: what depends on nothing restored after them
# (foreign keys reference other tables' keys, so they wait for the final pass).
EARLY_POST_DATA = ("INDEX", "CONSTRAINT", "TRIGGER")
# The smallest unit of work a data worker takes (consecutive frames): each unit costs a pg_restore start
# (tens of milliseconds). Larger on large databases, so that each job starts about eight at most.
MIN_UNIT = 16 * 1024 * 1024


def section_lines(entries):
    """pg_restore's list lines ("dump id; type") of each section, from the table of contents' entries in
    order: an entry of no section (a comment, a privilege) is in the section of the entry before it, as in
    pg_restore. (``pg_restore --list`` would cost a process each, in a container an exec.)"""
    current, lines = SECTION_PRE_DATA, collections.defaultdict(list)
    for entry in entries:
        current = entry.section if entry.section != SECTION_NONE else current
        lines[current].append("%d; %s" % (entry.dump_id, entry.desc))
    return lines


def _only_on(entry, loaded, entries):
    """Whether ``entry`` (post-data) depends on tables of ``loaded`` and otherwise only on pre-data objects
    that are not tables."""
    if entry is None or entry.desc not in EARLY_POST_DATA or not entry.dependencies:
        return False
    return any(d in loaded for d in entry.dependencies) and all(
        d in loaded or (d in entries and entries[d].section == SECTION_PRE_DATA and entries[d].desc != "TABLE")
        for d in entry.dependencies)


def work_units(frames, jobs):
    """``frames`` (in the archive's order) gathered into units of consecutive frames of at least
    ``MIN_UNIT`` (or 1/8 of a job's share), the largest unit first."""
    least = max(MIN_UNIT, sum(frame["raw"] for frame in frames) // (8 * max(1, jobs)))
    units, unit = [], []
    for frame in frames:
        unit.append(frame)
        if sum(f["raw"] for f in unit) >= least:
            units.append(unit)
            unit = []
    if unit:
        units.append(unit)
    return sorted(units, key=lambda u: -sum(f["raw"] for f in u))


def ready_batch(post, entries, loaded, data_sizes):
    """(batch, the rest) of ``post``'s lines: a batch holds what is buildable now (``_only_on``) of a few
    tables, taken until they hold ``MIN_UNIT`` of data (``data_sizes``: table dump id -> bytes). A large
    table's indexes come alone, so idle workers share large tables out; small tables' come together, as each
    batch costs a pg_restore (in a container an exec, about 80 ms of CPU): one each made a schema of a
    hundred small tables start a hundred."""
    batch, rest, tables, size = [], [], set(), 0
    for line in post:
        entry = entries.get(_dump_id(line))
        if _only_on(entry, loaded, entries) and (entry.dependencies[0] in tables or size < MIN_UNIT):
            if entry.dependencies[0] not in tables:
                tables.add(entry.dependencies[0])
                size += data_sizes.get(entry.dependencies[0], 0)
            batch.append(line)
        else:
            rest.append(line)
    return batch, rest


def table_data_sizes(manifest, entries):
    """{table dump id: bytes of its data in the archive} of a framed backup (``frame_ranges``' manifest)."""
    blocks = sorted(manifest["layout"]["blocks"], key=lambda block: block[1])
    ends = [start for _dump_id, start in blocks[1:]] + [manifest["uncompressed_size"]]
    sizes = {}
    for (data_id, start), end in zip(blocks, ends):
        for table in tables_of(entries, data_id):
            sizes[table] = sizes.get(table, 0) + end - start
    return sizes


def _dump_id(line):
    try:
        return int(line.split(";", 1)[0])
    except ValueError:
        return None


class RestoreScratch:
    """A private directory for what pg_restore reads where it runs (small files; in a container, a directory
    archive too): in ``workdir`` on this host, or made by mktemp in the container's /tmp. ``remove`` is safe
    to call whatever happened."""

    def __init__(self, runner, workdir=None):
        self.runner = runner
        if runner.kind == "container":
            rc, out, err = runner.run(["mktemp", "-d", "/tmp/stackops-restore.XXXXXX"])
            if rc != 0:
                raise CommandError(["mktemp", "-d"], rc, err)
            self.path = out.decode().strip()
            self.pipes = runner.pipes(self.path)
        else:
            self.path = tempfile.mkdtemp(prefix="restore-", dir=workdir)
            self.pipes = None

    def feed(self, argv):
        """A program reading stdin where pg_restore runs; in a container through a named pipe here when
        this host can reach its filesystem (no copy of every byte through the docker engine)."""
        return self.pipes.feed(argv) if self.pipes is not None else self.runner.feed(argv)

    def put(self, name, chunks):
        """A new file ``name`` (0600) holding ``chunks``; its path where pg_restore runs."""
        if self.pipes is not None:
            return self.pipes.put(name, chunks)
        path = "%s/%s" % (self.path, name)
        if self.runner.kind == "container":
            argv = PRIVATE_FILE + [path]
            rc, _out, err = self.runner.run(argv, input_chunks=chunks)
            if rc != 0:
                raise CommandError(argv, rc, err)
        else:
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                for data in chunks:
                    out.write(data)
        return path

    def put_directory(self, local_dir):
        """A copy of the directory archive ``local_dir`` in the container; its path there. Where this host
        reaches the container's filesystem, its files go straight into the scratch directory, copied by the
        kernel. Through the docker engine's archive API (a tar made here, sent to dockerd, unpacked there), the
        benchmark's 1 GB directory archive took 18-21 s to restore into a container instead of 13-14 s, and
        28-34 CPU-seconds instead of 21-24 (benchmarks/restore.py's case f, both run in turn). Elsewhere that
        API still does it."""
        names = sorted(os.listdir(local_dir))
        paths = [os.path.join(local_dir, name) for name in names]
        if self.pipes is not None and all(os.path.isfile(path) and not os.path.islink(path) for path in paths):
            for name, path in zip(names, paths):
                self.pipes.put_file(name, path)
            return self.path
        inside = "%s/archive" % self.path
        self.runner.put_directory(local_dir, inside)
        return inside

    def remove(self):
        pipes, self.pipes = self.pipes, None
        if self.path is None or (pipes is not None and pipes.remove()):
            self.path = None
            return
        if self.runner.kind == "host":
            shutil.rmtree(self.path, ignore_errors=True)
            return
        try:
            self.runner.run(["rm", "-rf", self.path])
        except RunbookError:
            pass  # the container is gone (a drill's throwaway one, removed), and the files with it
        self.path = None


class WriteBehind:
    """Writes in a thread of its own, so the disk (or the docker engine's socket) takes one piece while the
    next is decompressed. ``write`` and ``close`` raise the OSError the thread met; at most ``depth`` pieces
    wait in memory."""

    def __init__(self, write, depth=8):
        self._write = write
        self._queue = queue.Queue(depth)
        self._error = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        for data in iter(self._queue.get, None):
            if self._error is None:
                try:
                    self._write(data)
                except OSError as exc:
                    self._error = exc

    def write(self, data):
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def close(self):
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class SeekableArchive:
    """A custom archive pg_restore can restore with parallel jobs. Each job seeks to its own tables, which a
    stream from stdin does not allow (restored that way, the default backup took 1.44x a parallel restore).
    The backup is decompressed into a plain file where pg_restore runs (a temporary directory on this host,
    or the container's /tmp): best while it is checked, in the same pass (``open``, ``write``, ``close``, fed
    by ``_backups.checked_copy``), else by ``make``. An uncompressed local archive is used where it is.
    Without room for the copy (the manifest's uncompressed_size plus a margin, or a disk that fills up while
    it is written) ``no_room`` says so and the archive is restored as one stream, as before. ``remove`` is
    safe to call whatever happened."""

    def __init__(self, runner, manifest, workdir=None):
        self.runner, self.manifest = runner, manifest
        self.workdir = workdir or tempfile.gettempdir()
        self.path = None
        self.no_room = None
        self.ready = False
        self._out = self._sink = None
        self._made = False

    @staticmethod
    def wanted(manifest, jobs):
        """Whether a restore of ``manifest`` with ``jobs`` (None: the default) would use a copy."""
        return manifest.get("format") == "custom" and (jobs or default_jobs()) > 1 and not framed(manifest)

    def in_place(self, storage):
        return (self.runner.kind == "host" and self.manifest["compression"] == "none"
                and hasattr(storage, "directory"))

    def open(self):
        """Start a copy; False (``no_room`` says why, when that is the reason) when there is none to make."""
        manifest, runner = self.manifest, self.runner
        needed = manifest.get("uncompressed_size")
        if self.ready or self.no_room or self._out is not None or not needed:
            return False  # no size: an older or imported manifest, the room for the copy is not known
        if runner.kind == "container":
            self.path = "/tmp/stackops-restore-%s.dump" % manifest["name"]
            if self._container_free() < needed + SEEKABLE_MARGIN:
                return self._without_room()
            self._made = True
            self._sink = runner.feed(PRIVATE_FILE + [self.path])
        else:
            if shutil.disk_usage(self.workdir).free < needed + SEEKABLE_MARGIN:
                return self._without_room()
            self.path = os.path.join(self.workdir, "%s.seekable.dump" % manifest["name"])
            self._made = True
            self._sink = open(self.path, "xb")
            os.fchmod(self._sink.fileno(), 0o600)
        self._out = WriteBehind(self._sink.write)
        return True

    def write(self, data):
        if self._out is None:
            return
        try:
            self._out.write(data)
        except OSError:
            # the room went while the copy was written (another writer on the filesystem): stream instead
            self.abort()
            self._without_room()

    def close(self):
        """Finish the copy; True when it is complete and ready for pg_restore."""
        if self._out is None:
            return self.ready
        try:
            self._out.close()
            self._out = None
            if self.runner.kind == "container":
                # a failed cat: the container's /tmp filled up meanwhile, or is read-only
                self.ready = self._sink.finish()[0] == 0
            else:
                self._sink.close()
                self.ready = True
            self._sink = None
        except OSError:
            pass
        if not self.ready:
            self.abort()
            self._without_room()
        return self.ready

    def make(self, storage):
        """The copy, made now from ``storage`` unless it is ready; False when the restore must stream."""
        if self.ready:
            return True
        if self.in_place(storage):
            self.path, self.ready = storage.path(self.manifest["file"]), True
            return True
        if not self.open():
            return False
        try:
            for chunk in decompressed_chunks(self.manifest["compression"], storage.open_chunks(self.manifest["file"])):
                self.write(chunk)
        except BaseException:
            self.abort()
            raise
        return self.close()

    def abort(self):
        """Drop a copy being written (the backup did not check out, or the room ran out)."""
        out, self._out = self._out, None
        if out is not None:
            try:
                out.close()
            except OSError:
                pass
        sink, self._sink = self._sink, None
        if sink is not None:
            try:
                sink.finish() if self.runner.kind == "container" else sink.close()
            except OSError:
                pass
        self.remove()

    def _without_room(self):
        where = self.workdir if self.runner.kind == "host" else "/tmp of the container"
        needed = self.manifest.get("uncompressed_size") or 0
        self.no_room = ("%s had no room for a seekable copy of %s (%d MB): it was restored as one stream, without "
                        "parallel jobs. Point TMPDIR at a filesystem with room for a faster restore"
                        % (where, self.manifest["name"], (needed + SEEKABLE_MARGIN) // 1000000))
        return False

    def _container_free(self):
        rc, out, _err = self.runner.run(["df", "-Pk", "/tmp"])
        try:
            return int(out.decode().splitlines()[-1].split()[3]) * 1024 if rc == 0 else 0
        except (IndexError, ValueError):
            return 0

    def remove(self):
        self.ready = False
        if not self._made:
            return
        self._made = False
        if self.runner.kind == "container":
            try:
                self.runner.run(["rm", "-f", self.path])
            except RunbookError:
                pass  # the container is gone (a drill's throwaway one, removed), and the copy with it
        else:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


ROLE_STATEMENT = re.compile(r'^(CREATE|ALTER|COMMENT ON) ROLE ("(?:[^"]|"")+"|[^\s;]+)')
TABLESPACE_STATEMENT = re.compile(r"^(CREATE TABLESPACE|ALTER TABLESPACE|COMMENT ON TABLESPACE)")


def _role_name(token):
    return token[1:-1].replace('""', '"') if token.startswith('"') else token


def globals_script(chunks, existing_roles, report):
    """The statements of a globals backup (pg_dumpall --globals-only, one statement a line) that add what is
    missing: roles that exist already - the connecting superuser among them - are neither created nor altered
    (their passwords and attributes stay), tablespaces are left out (their folders are the server's). Fills
    ``report`` with the roles created and skipped."""
    report.setdefault("created_roles", [])
    report.setdefault("skipped_roles", [])
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            kept = _globals_line(line.decode("utf-8"), existing_roles, report)
            if kept is not None:
                yield (kept + "\n").encode("utf-8")
    if rest:
        kept = _globals_line(rest.decode("utf-8"), existing_roles, report)
        if kept is not None:
            yield (kept + "\n").encode("utf-8")


def _globals_line(line, existing_roles, report):
    if TABLESPACE_STATEMENT.match(line):
        return None
    match = ROLE_STATEMENT.match(line)
    if not match:
        return line
    role = _role_name(match.group(2))
    if role in existing_roles:
        if match.group(1) == "CREATE" and role not in report["skipped_roles"]:
            report["skipped_roles"].append(role)
        return None
    if match.group(1) == "CREATE":
        report["created_roles"].append(role)
    return line


def restore_globals(runner, storage, manifest, report):
    """Restore a globals backup's roles and memberships on the server (see globals_script)."""
    session = PsqlSession(runner, "postgres")
    try:
        existing = set(r for r in session.query("SELECT rolname FROM pg_roles;") if r)
    finally:
        session.close()
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-password", "-d", "postgres"]
    chunks = decompressed_chunks(manifest["compression"], storage.open_chunks(manifest["file"]))
    rc, _out, err = runner.run(argv, input_chunks=globals_script(chunks, existing, report))
    if rc != 0:
        raise CommandError(argv, rc, err)
    return report


def table_selection(tables):
    """pg_restore's options selecting ``tables`` ("schema.table" or "table")."""
    selection = []
    for table in tables:
        schema, _dot, name = table.rpartition(".")
        selection += (["--schema", schema] if schema else []) + ["--table", name]
    return selection


# Checks, after rows were replaced with the triggers off, every foreign key from or to the restored tables, and
# sets their serial sequences past the restored rows. Raises (and so rolls back everything) at the first foreign
# key the restored rows would break: referencing rows are never left without the row they reference.
CHECK_FOREIGN_KEYS_SQL = """
DO $stackops$
DECLARE
  fk record; orphans bigint; matched text; present text; col record;
BEGIN
  FOR fk IN
    SELECT c.conname, c.conrelid::regclass AS child, c.confrelid::regclass AS parent,
           ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS ccols,
           ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS pcols
    FROM pg_constraint c
    WHERE c.contype = 'f' AND (c.conrelid = ANY (%(tables)s) OR c.confrelid = ANY (%(tables)s))
  LOOP
    SELECT string_agg(format('p.%%I = c.%%I', fk.pcols[i], fk.ccols[i]), ' AND '),
           string_agg(format('c.%%I IS NOT NULL', fk.ccols[i]), ' AND ')
      INTO matched, present FROM generate_subscripts(fk.ccols, 1) AS i;
    EXECUTE format('SELECT count(*) FROM %%s c WHERE %%s AND NOT EXISTS (SELECT 1 FROM %%s p WHERE %%s)',
                   fk.child, present, fk.parent, matched) INTO orphans;
    IF orphans > 0 THEN
      RAISE EXCEPTION 'stackops: %% row(s) of %% would reference rows of %% that the restored data does not have (foreign key %%)',
        orphans, fk.child, fk.parent, fk.conname;
    END IF;
  END LOOP;
  FOR col IN
    SELECT a.attrelid::regclass AS tbl, a.attname, pg_get_serial_sequence(a.attrelid::regclass::text, a.attname) AS seq
    FROM pg_attribute a WHERE a.attrelid = ANY (%(tables)s) AND a.attnum > 0 AND NOT a.attisdropped
  LOOP
    IF col.seq IS NOT NULL THEN
      EXECUTE format('SELECT setval(%%L, COALESCE((SELECT max(%%I) FROM %%s), 1), (SELECT count(*) > 0 FROM %%s))',
                     col.seq, col.attname, col.tbl, col.tbl);
    END IF;
  END LOOP;
END
$stackops$;
"""


def restore_tables(runner, storage, manifest, target, tables, scratch):
    """Replace the rows of ``tables`` (names as the archive has them, "schema.table") in ``target`` with the
    backup's, without dropping anything: the tables' definitions and the backup's rows go into the ``scratch``
    database (pre-data section, then the tables' data), then in one transaction of ``target`` the rows are
    deleted and copied in with triggers off (no cascade reaches the referencing tables), and every foreign key
    from or to the tables is checked before the commit. Needs a superuser (session_replication_role)."""
    restore_into(runner, storage, manifest, scratch, no_owner=True, selection=["--section=pre-data"])
    restore_into(runner, storage, manifest, scratch, selection=["--data-only"] + table_selection(tables))
    session = PsqlSession(runner, scratch)
    try:
        columns = {}
        for table in tables:
            columns[table] = session.scalar(
                "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = "
                "%s::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '';" % literal(_quoted(table)))
    finally:
        session.close()

    def script():
        yield b"BEGIN;\nSET LOCAL session_replication_role = replica;\n"
        for table in tables:
            yield ("DELETE FROM %s;\nCOPY %s (%s) FROM STDIN;\n" % (_quoted(table), _quoted(table),
                                                                    columns[table])).encode()
            rows = runner.stream(["psql", "-X", "-q", "--no-password", "-d", scratch, "-c",
                                  "COPY %s (%s) TO STDOUT" % (_quoted(table), columns[table])])
            try:
                yield from iter(rows.read, b"")
            finally:
                rc, err = rows.finish()
            if rc != 0:
                raise CommandError(["psql"], rc, err)
            yield b"\\.\n"
        yield b"SET LOCAL session_replication_role = origin;\n"
        regclasses = "ARRAY[%s]::regclass[]" % ", ".join(literal(_quoted(t)) for t in tables)
        yield (CHECK_FOREIGN_KEYS_SQL % dict(tables=regclasses)).encode()
        yield b"COMMIT;\n"

    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password", "-d", target]
    rc, _out, err = runner.run(argv, input_chunks=script())
    if rc != 0:
        raise CommandError(argv, rc, err)


def _quoted(table):
    schema, _dot, name = table.partition(".")
    return "%s.%s" % (ident(schema), ident(name))


def archive_tables(runner, storage, manifest):
    """The tables ("schema.table") whose data a custom or directory archive holds, from ``pg_restore --list``."""
    if manifest["format"] == "directory":
        source = storage.path(manifest["file"])
        scratch = RestoreScratch(runner) if runner.kind == "container" else None
        argv = ["pg_restore", "--list"]
        try:
            if scratch is not None:
                # the table of contents is all pg_restore --list reads: copy just toc.dat in
                scratch.put("toc.dat", storage.open_chunks(os.path.join(manifest["file"], "toc.dat")))
                source = scratch.path
            argv.append(source)
            rc, out, err = runner.run(argv)
        finally:
            if scratch is not None:
                scratch.remove()
    else:
        argv = ["pg_restore", "--list"]
        rc, out, err = runner.run(argv, input_chunks=decompressed_chunks(
            manifest["compression"], storage.open_chunks(manifest["file"])))
    if rc != 0:
        raise CommandError(argv, rc, err)
    tables = []
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith(";") or " TABLE DATA " not in line:
            continue
        schema_and_name = line.split(" TABLE DATA ", 1)[1].rsplit(" ", 1)[0]  # "public users" (owner cut)
        schema, _sep, name = schema_and_name.partition(" ")
        tables.append("%s.%s" % (schema, name))
    return sorted(tables)


def missing_tables(wanted, in_archive):
    """The names of ``wanted`` (``schema.table`` or ``table``, exactly as pg_restore -t matches) that are not
    in the archive."""
    return [t for t in wanted if not archive_names(t, in_archive)]


def archive_names(table, in_archive):
    """The archive's "schema.table" names that ``table`` ("schema.table", or "table" in any schema) means."""
    return [t for t in in_archive if t == table or ("." not in table and t.split(".", 1)[1] == table)]


def compare_counts(expected, actual):
    """{table: {"expected": n, "restored": m}} for every table whose counts differ or that is missing."""
    differences = {}
    for table in sorted(set(expected) | set(actual)):
        if expected.get(table) != actual.get(table):
            differences[table] = dict(expected=expected.get(table), restored=actual.get(table))
    return differences


class Admin:
    """Database-level statements on a server, through a psql session to its maintenance database."""

    def __init__(self, runner, maintenance_db="postgres"):
        self.maintenance_db = maintenance_db
        self.session = PsqlSession(runner, maintenance_db)

    def exists(self, database):
        return self.session.scalar("SELECT count(*) FROM pg_database WHERE datname = %s;" % literal(database)) == "1"

    # Only client sessions count: autovacuum workers and other background processes show up in
    # pg_stat_activity with the database's name, and DROP DATABASE stops them by itself.
    SESSIONS_OF = ("FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                   "AND pid <> pg_backend_pid();")

    def other_sessions(self, database):
        rows = self.session.query(
            "SELECT json_build_object('pid', pid, 'user', usename, 'application', application_name, "
            "'client', client_addr::text, 'state', state) " + self.SESSIONS_OF % literal(database))
        return [json.loads(row) for row in rows if row.strip()]

    def terminate(self, database, wait=10):
        """End the client sessions of ``database`` and wait (up to ``wait`` seconds) until they are gone:
        pg_terminate_backend only signals, and a rename or drop right after it would find them still there."""
        self.session.query("SELECT pg_terminate_backend(pid) " + self.SESSIONS_OF % literal(database))
        deadline = time.monotonic() + wait
        while self.other_sessions(database) and time.monotonic() < deadline:
            time.sleep(0.1)

    def create(self, database, owner=None):
        self.session.query("CREATE DATABASE %s%s;" % (ident(database), " OWNER %s" % ident(owner) if owner else ""))

    def owner(self, database):
        """The owner of ``database``, or None when there is no such database."""
        return self.session.scalar("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s;"
                                   % literal(database)) or None

    def role_exists(self, role):
        return self.session.scalar("SELECT count(*) FROM pg_roles WHERE rolname = %s;" % literal(role)) == "1"

    def drop(self, database):
        self.session.query("DROP DATABASE IF EXISTS %s;" % ident(database))

    def allow_connections(self, database, allowed):
        self.session.query("ALTER DATABASE %s ALLOW_CONNECTIONS %s;" % (ident(database), "true" if allowed else "false"))

    def rename(self, old, new):
        self.session.query("ALTER DATABASE %s RENAME TO %s;" % (ident(old), ident(new)))

    def row_counts(self, database):
        """``row_counts`` of ``database``, on this session (connected there, then back): no psql of its own,
        which in a container is one exec fewer."""
        self.session.query("\\connect %s" % psql_argument(database))
        try:
            return self.session.row_counts("exact")
        finally:
            if not self.session.closed:
                self.session.query("\\connect %s" % psql_argument(self.maintenance_db))

    def close(self):
        self.session.close()


def row_counts(runner, database):
    session = PsqlSession(runner, database)
    try:
        return session.row_counts("exact")
    finally:
        session.close()
