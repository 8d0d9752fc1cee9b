# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

What pg_dump and pg_dumpall bring to the backup pipeline (``_backup``): their argv, the stream of a
single-file dump with its own checks (exit code, empty output, completion line), the in-flight verification
of a dump (decompression, ``pg_restore --list``), directory archives (on the host or copied out of a
container), and the verification that reads any stored backup back against its manifest.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import tarfile

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._backup import (
    BackupError,
    BackupWriter,
    disk_error,
    write_stream,
)
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils._archive_layout import frame_ranges
from ansible_collections.stackops.runbook.plugins.module_utils._compression import (
    CompressionError,
    Decompressor,
    default_level,
)
from ansible_collections.stackops.runbook.plugins.module_utils._tar import ChunkReader
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import PsqlSession, client_version
from ansible_collections.stackops.runbook.plugins.module_utils._storage import HashingFile, StreamDigest, tree_digest

PLAIN_DUMP_END = (b"-- PostgreSQL database dump complete", b"-- PostgreSQL database cluster dump complete")
TAIL_BYTES = 512


class DumpError(BackupError):
    """A dump, or a stored backup read back, does not check out."""


CONTENT_OPTIONS = {"full": [], "schema": ["--schema-only"], "data": ["--data-only"]}


def pg_dump_argv(database, fmt, jobs=None, snapshot=None, dir_compression=None, out_dir=None, content="full"):
    """argv of pg_dump for one database. Single-file formats go to stdout uncompressed (we compress,
    in parallel threads); the directory format writes its own files, compressed by pg_dump."""
    argv = ["pg_dump", "--no-password"] + CONTENT_OPTIONS[content]
    if fmt == "plain":
        argv.append("--format=plain")
    elif fmt == "custom":
        argv += ["--format=custom", "--compress=0"]
    else:
        argv += ["--format=directory", "--file=%s" % out_dir, "--compress=%s" % dir_compression]
        if jobs:
            argv.append("--jobs=%d" % jobs)
    if snapshot:
        argv.append("--snapshot=%s" % snapshot)
    argv += ["--dbname", database]
    return argv


def pg_dumpall_argv(globals_only):
    return ["pg_dumpall", "--no-password"] + (["--globals-only"] if globals_only else [])


class InflightCheck:
    """Verifies a single-file backup while it is written: every compressed byte that goes to the file is
    also decompressed here, and the result checked by the dump's completion line (plain) or fed to
    ``pg_restore --list`` (custom). Reading the file back afterwards (``read_back``) proves the disk holds
    those same bytes. Together: full decompression, checksum and pg_restore --list, without a second pass
    over the uncompressed data."""

    def __init__(self, runner, fmt, compression, copy=None):
        self.fmt = fmt
        self.copy = copy  # where the decompressed stream also goes (a restore's seekable copy), or None
        self.decompressor = Decompressor(compression)
        self.tail = b""
        # without a runner (no pg_restore at hand) a custom archive is checked by decompression and sha256
        self.restore_list = runner.feed(["pg_restore", "--list"]) if fmt == "custom" and runner else None

    def observe(self, compressed):
        try:
            self._check(self.decompressor.feed(compressed))
        except CompressionError as exc:
            raise DumpError("verification failed: the compressed stream does not decompress: %s" % exc)

    def _check(self, data):
        if not data:
            return
        self.tail = (self.tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]
        if self.copy is not None:
            self.copy.write(data)
        if self.restore_list is not None:
            self.restore_list.write(data)

    def finish(self):
        """What it found (dict); raises DumpError when the backup does not check out."""
        try:
            self._check(self.decompressor.finish())
        except CompressionError as exc:
            self.abort()
            raise DumpError("verification failed: %s" % exc)
        if self.fmt == "plain":
            if not any(marker in self.tail for marker in PLAIN_DUMP_END):
                raise DumpError("verification failed: the decompressed dump does not end with its completion line")
            return dict(method="sha256+decompress+completion-line")
        if self.restore_list is None:
            return dict(method="sha256+decompress")
        rc, out, err = self.restore_list.finish()
        self.restore_list = None
        if rc != 0:
            raise DumpError("verification failed: pg_restore --list cannot read the archive: %s" % err.strip())
        return dict(method="sha256+decompress+pg_restore-list",
                    tables_in_archive=count_table_data(out.decode("utf-8", "replace")))

    def abort(self):
        if self.restore_list is not None:
            self.restore_list.finish()
            self.restore_list = None


class _DumpOutput:
    """The stdout of pg_dump as chunks; at its end the exit code, an empty dump and a missing completion
    line (plain SQL) each raise. ``close`` kills the program when the pipeline stopped early."""

    def __init__(self, runner, argv, fmt):
        self.argv, self.fmt = argv, fmt
        self.stream = runner.stream(argv)

    def __iter__(self):
        raw_bytes, tail = 0, b""
        for chunk in iter(self.stream.read, b""):
            raw_bytes += len(chunk)
            tail = (tail + chunk[-TAIL_BYTES:])[-TAIL_BYTES:]
            yield chunk
        rc, err = self.stream.finish()
        self.stream = None
        if rc != 0:
            raise CommandError(self.argv, rc, err)
        if raw_bytes == 0:
            raise DumpError("%s produced an empty dump (no bytes)%s; nothing was kept"
                            % (self.argv[0], ": " + err.strip() if err.strip() else ""))
        if self.fmt == "plain" and not any(marker in tail for marker in PLAIN_DUMP_END):
            raise DumpError("%s's output ends without its completion line; the dump is incomplete" % self.argv[0])

    def close(self):
        if self.stream is not None:
            self.stream.kill()
            self.stream = None


def dump_to_file(runner, argv, partial_path, fmt, compression, level, verify=True, recipients=None):
    """Stream ``argv``'s stdout through the backup stages into a new ``partial_path`` (``_backup.write_stream``,
    encrypted to age ``recipients`` when given); with ``verify``, check it in flight and read it back. Returns
    the manifest's facts (size, sha256, uncompressed_size, verification, encryption). On any failure the
    partial file is removed and the program killed."""
    check = InflightCheck(runner, fmt, compression) if verify else None
    try:
        output = _DumpOutput(runner, argv, fmt)
    except BaseException:
        if check is not None:
            check.abort()
        raise
    try:
        return write_stream(output, partial_path, compression, level, check, recipients, framed=fmt == "custom")
    finally:
        output.close()


def _hash_tree(root):
    """Per-file size and sha256 of a directory backup; files 0600; everything fsynced."""
    files = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for file_name in sorted(filenames):
            path = os.path.join(dirpath, file_name)
            os.chmod(path, 0o600)
            digest = hashlib.sha256()
            size = 0
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1024 * 1024), b""):
                    digest.update(chunk)
                    size += len(chunk)
                os.fsync(fh.fileno())
            files.append(dict(path=os.path.relpath(path, root), size=size, sha256=digest.hexdigest()))
    os.chmod(root, 0o700)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return files


def dump_directory_on_host(runner, argv, partial_dir, on_started=None):
    """pg_dump --format=directory straight into ``partial_dir``. Returns (size, sha256, files)."""
    stream = None
    try:
        stream = runner.stream(argv)
        if on_started:
            on_started(stream)
        for _chunk in iter(stream.read, b""):
            pass
        rc, err = stream.finish()
        stream = None
        if rc != 0:
            raise CommandError(argv, rc, err)
        files = _hash_tree(partial_dir)
    except BaseException:
        if stream is not None:
            stream.kill()
        _remove_tree(partial_dir)
        raise
    return sum(f["size"] for f in files), tree_digest(files), files


def copy_directory_out(runner, container_dir, partial_dir):
    """Copy a directory dump out of the container into ``partial_dir`` (hashing each file)."""
    try:
        os.mkdir(partial_dir, 0o700)
        with tarfile.open(fileobj=ChunkReader(runner.get_archive(container_dir)), mode="r|") as tar:
            base = os.path.basename(container_dir.rstrip("/"))
            for member in tar:
                if not member.isfile():
                    continue
                rel = os.path.relpath(member.name, base)
                if rel.startswith("..") or os.path.isabs(rel) or "/" in rel:
                    raise DumpError("unexpected path %r in the dump copied out of the container" % member.name)
                src = tar.extractfile(member)
                out = HashingFile(os.path.join(partial_dir, rel))
                for chunk in iter(lambda: src.read(1024 * 1024), b""):
                    out.write(chunk)
                out.close()
        files = _hash_tree(partial_dir)
    except OSError as exc:
        _remove_tree(partial_dir)
        raise disk_error(exc, partial_dir)
    except BaseException:
        _remove_tree(partial_dir)
        raise
    return sum(f["size"] for f in files), tree_digest(files), files


def _remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


def count_table_data(toc_text):
    """How many tables' data an archive holds, from ``pg_restore --list``."""
    return sum(1 for line in toc_text.splitlines() if not line.startswith(";") and " TABLE DATA " in line)


def verify_backup(storage, manifest, runner=None, copy=None, whole=True):
    """Read a backup back from its storage (local or S3) and prove it against its manifest: size and
    sha256 of every file, full decompression of a single-file backup, and with a ``runner`` that has
    pg_restore, ``pg_restore --list`` of a custom archive. The decompressed stream also goes to ``copy``
    (``write``) when one is given, so a restore needs no second pass. Without ``whole``, a framed archive
    (see ``_archive_layout``) that a restore is about to read frame by frame is checked by size and sha256
    with only its first frame (the table of contents) decompressed and listed: the restore decompresses the
    others, each with its content checksum, and reads every block, so a second full pass here would only
    cost time (a second of every ten on the benchmark). Raises DumpError naming what is wrong."""
    location = storage.location(manifest["file"])
    if manifest["format"] == "directory":
        items = manifest.get("files", [])
        # hashlib and reads let go of the GIL: the files are read side by side (the 1 GB benchmark archive's
        # three in 0.55 s instead of 0.8-1.2, before each restore of it), and told in the manifest's order
        with concurrent.futures.ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1, len(items)))) as pool:
            digests = list(pool.map(lambda item: _file_digest(storage, manifest["file"], item), items))
        files = []
        for item, digest in zip(items, digests):
            size, sha256 = digest.found()
            files.append(dict(path=item["path"], size=size, sha256=sha256))
            problem = digest.mismatch("%s/%s" % (location, item["path"]), item)
            if problem:
                raise DumpError(problem)
        if tree_digest(files) != manifest["sha256"]:
            raise DumpError("%s does not hold the files its manifest lists" % location)
        return dict(method="sha256 of every file")
    digest = StreamDigest()
    check = InflightCheck(runner, manifest["format"], manifest["compression"], copy)
    checked = None if whole or not manifest.get("layout") else frame_ranges(manifest)[0]["end"]
    try:
        for chunk in digest.over(storage.open_chunks(manifest["file"])):
            if checked is None:
                check.observe(chunk)
            elif checked > 0:
                check.observe(chunk[:checked])
                checked -= len(chunk)
        found = check.finish()
    except DumpError as exc:
        check.abort()
        raise DumpError("%s is damaged: %s" % (location, exc))
    problem = digest.mismatch(location, manifest)
    if problem:
        raise DumpError(problem)
    if not whole and manifest.get("layout"):
        found["method"] = found["method"].replace("decompress", "decompress-of-the-table-of-contents")
    return found


def _file_digest(storage, directory, item):
    """The StreamDigest of one file of a directory backup, read whole."""
    digest = StreamDigest()
    for _chunk in digest.over(storage.open_chunks("%s/%s" % (directory, item["path"]))):
        pass
    return digest


class DumpWriter(BackupWriter):
    """pg_dump of one database, or pg_dumpall of all of them or of the globals, as a backup kind: the
    source's facts (server version, owner, row counts in the dump's own snapshot) and the dump itself."""

    def __init__(self, params):
        p = self.params = params
        if p["all_databases"]:
            self.kind, self.label, self.database = "all_databases", "all_databases", None
        elif p["globals_only"]:
            self.kind, self.label, self.database = "globals", "globals", None
        else:
            self.kind, self.label, self.database = "database", p["database"], p["database"]
        # a schema-only or data-only backup has a label of its own, so it is never the latest full backup
        self.content = p["content"]
        if self.content != "full":
            self.label = "%s.%s" % (self.label, self.content)
        self.format = p["format"] if self.kind == "database" else "plain"
        self.compression = p["compression"]
        self.level = p["compression_level"]
        self.row_counts = p["row_counts"] or ("exact" if self.kind == "database" and self.content != "schema"
                                              else "none")
        self.runner = self.pg_dump_version = None

    def connect(self, runner):
        """Learn the client's version through ``runner`` and settle the compression it allows."""
        self.runner = runner
        major, self.pg_dump_version = client_version(runner, "pg_dump" if self.kind == "database" else "pg_dumpall")
        if self.format == "directory":
            if self.compression is None:
                self.compression = "zstd" if major >= 16 else "gzip"
            elif self.compression == "zstd" and major < 16:
                raise DumpError("compression=zstd with format=directory needs pg_dump 16 or newer (this one is "
                                "%d); use compression=gzip or none, or format=custom" % major)
        elif self.compression is None:
            self.compression = "zstd"
        if self.level is None and self.compression != "none":
            self.level = default_level(self.compression)

    def file_name(self, name):
        return mf.data_file_name(name, self.format, self.compression, encrypted=bool(self.params.get("age_recipients")))

    def write(self, name, partial):
        session = PsqlSession(self.runner, self.database or "postgres")
        try:
            facts = dict(server_version=session.server_version(), database_owner=None)
            if self.kind == "database":
                facts["database_owner"] = session.scalar(
                    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database();")
            snapshot = None
            if self.row_counts == "exact":
                snapshot = session.export_snapshot()
            elif self.row_counts == "estimate":
                facts["row_counts"] = session.row_counts("estimate")
            if self.kind != "database":
                facts.update(self._dump_file(pg_dumpall_argv(self.kind == "globals"), partial))
            elif self.format == "directory":
                facts.update(self._dump_directory(name, snapshot, partial))
            else:
                facts.update(self._dump_file(pg_dump_argv(self.database, self.format, snapshot=snapshot,
                                                          content=self.content), partial))
            if snapshot:
                # the exporting transaction is still open: these counts see exactly what the dump saw
                facts["row_counts"] = session.row_counts("exact")
        finally:
            session.close()
        if "row_counts" in facts:
            facts["tables"] = len(facts["row_counts"])
        return dict(self.describe(), **facts)

    def describe(self):
        """The manifest's facts known before the dump."""
        p = self.params
        if p["container"]:
            source = dict(mode="container", container=p["container"], host=p["login_host"])
        else:
            source = dict(mode="host", host=p["login_host"] or p["login_unix_socket"] or "local socket",
                          port=p["login_port"], user=p["login_user"])
        return dict(database=self.database, content=self.content, format=self.format, compression=self.compression,
                    compression_level=self.level, jobs=p["jobs"], tag=p["tag"], pg_dump_version=self.pg_dump_version,
                    source=source, row_counts_mode=self.row_counts, verified=bool(p["verify"]))

    def _dump_file(self, argv, partial):
        return dump_to_file(self.runner, argv, partial, self.format, self.compression, self.level,
                            self.params["verify"], self.params.get("age_recipients"))

    def _dump_directory(self, name, snapshot, partial):
        runner, jobs = self.runner, self.params["jobs"]
        dir_compression = "0" if self.compression == "none" else "%s:%d" % (self.compression, self.level)
        if self.compression == "gzip":
            dir_compression = str(self.level)
        verification = None
        if runner.kind == "host":
            argv = pg_dump_argv(self.database, "directory", jobs, snapshot, dir_compression, partial, self.content)
            size, sha256, files = dump_directory_on_host(runner, argv, partial)
            try:
                if self.params["verify"]:
                    verification = verify_directory(runner, partial)
            except BaseException:
                _remove_tree(partial)
                raise
        else:
            inside = "/tmp/stackops-runbook-%s" % name
            argv = pg_dump_argv(self.database, "directory", jobs, snapshot, dir_compression, inside, self.content)
            try:
                rc, _out, err = runner.run(argv)
                if rc != 0:
                    raise CommandError(argv, rc, err)
                verification = verify_directory(runner, inside) if self.params["verify"] else None
                size, sha256, files = copy_directory_out(runner, inside, partial)
            finally:
                runner.run(["rm", "-rf", inside])
        facts = dict(size=size, sha256=sha256, files=files)
        if verification:
            facts["verification"] = verification
        return facts


def verify_directory(runner, path):
    """``pg_restore --list`` of a directory archive (on the runner that can see it)."""
    rc, out, err = runner.run(["pg_restore", "--list", path])
    if rc != 0:
        raise DumpError("verification failed: pg_restore --list cannot read %s: %s" % (path, err.strip()))
    return dict(method="sha256+pg_restore-list", tables_in_archive=count_table_data(out.decode("utf-8", "replace")))
