# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

The backup pipelines: pg_dump (or pg_dumpall) → compression → sha256 → ``NAME.partial`` → fsync, and
the verification that reads a backup back. Renaming to the final name is the caller's last step.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tarfile

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils._compression import (
    CompressionError,
    Decompressor,
    compressing_writer,
)
from ansible_collections.stackops.runbook.plugins.module_utils._storage import (
    HashingFile,
    file_sha256,
    hashed,
    tree_digest,
)

PLAIN_DUMP_END = (b"-- PostgreSQL database dump complete", b"-- PostgreSQL database cluster dump complete")
TAIL_BYTES = 512


class DumpError(RunbookError):
    """The dump or its verification failed; nothing was kept."""


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


def _disk_error(exc, path):
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DumpError("the destination is full (%s) while writing %s; the partial file was removed. Free space "
                         "or choose another dest" % (exc.strerror, path))
    return DumpError("cannot write %s: %s" % (path, exc))


class InflightCheck:
    """Verifies a single-file backup while it is written: every compressed byte that goes to the file is
    also decompressed here, and the result checked by the dump's completion line (plain) or fed to
    ``pg_restore --list`` (custom). Reading the file back afterwards (``read_back``) proves the disk holds
    those same bytes. Together: full decompression, checksum and pg_restore --list, without a second pass
    over the uncompressed data."""

    def __init__(self, runner, fmt, compression):
        self.fmt = fmt
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


def read_back(path, sha256):
    """Read a written file back from the disk and compare its sha256 with what was written."""
    try:
        found = file_sha256(path)
    except OSError as exc:
        raise DumpError("verification failed: cannot read %s back: %s" % (path, exc))
    if found != sha256:
        raise DumpError("verification failed: %s reads back with sha256 %s, written as %s (disk or filesystem "
                        "error)" % (path, found, sha256))


def dump_to_file(runner, argv, partial_path, fmt, compression, level, verify=True):
    """Stream ``argv``'s stdout through compression into a new ``partial_path``; fsync it; with
    ``verify``, check it in flight and read it back. Returns (size, sha256, uncompressed bytes,
    verification). On any failure the partial file is removed."""
    check = InflightCheck(runner, fmt, compression) if verify else None
    out = HashingFile(partial_path, observer=check.observe if check else None)
    stream = None
    try:
        writer = compressing_writer(compression, level, out)
        stream = runner.stream(argv)
        raw_bytes = 0
        tail = b""
        for chunk in iter(stream.read, b""):
            raw_bytes += len(chunk)
            writer.write(chunk)
            tail = (tail + chunk[-TAIL_BYTES:])[-TAIL_BYTES:]
        rc, err = stream.finish()
        stream = None
        if rc != 0:
            raise CommandError(argv, rc, err)
        if raw_bytes == 0:
            raise DumpError("%s produced an empty dump (no bytes)%s; nothing was kept"
                            % (argv[0], ": " + err.strip() if err.strip() else ""))
        if fmt == "plain" and not any(marker in tail for marker in PLAIN_DUMP_END):
            raise DumpError("%s's output ends without its completion line; the dump is incomplete" % argv[0])
        writer.close()
        out.close()
        verification = None
        if check:
            verification = check.finish()
            read_back(partial_path, out.sha256.hexdigest())
        return out.size, out.sha256.hexdigest(), raw_bytes, verification
    except OSError as exc:
        _abort(stream, out, check)
        raise _disk_error(exc, partial_path)
    except BaseException:
        _abort(stream, out, check)
        raise


def _abort(stream, out, check=None):
    if stream is not None:
        stream.kill()
    if check is not None:
        check.abort()
    out.discard()


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
        with tarfile.open(fileobj=_ChunkReader(runner.get_archive(container_dir)), mode="r|") as tar:
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
        raise _disk_error(exc, partial_dir)
    except BaseException:
        _remove_tree(partial_dir)
        raise
    return sum(f["size"] for f in files), tree_digest(files), files


class _ChunkReader:
    """A file-like reader over an iterator of chunks (for tarfile's stream mode)."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buf = b""

    def read(self, n=-1):
        while n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data


def _remove_tree(path):
    shutil.rmtree(path, ignore_errors=True)


def count_table_data(toc_text):
    """How many tables' data an archive holds, from ``pg_restore --list``."""
    return sum(1 for line in toc_text.splitlines() if not line.startswith(";") and " TABLE DATA " in line)


def verify_backup(storage, manifest, runner=None):
    """Read a backup back from its storage (local or S3) and prove it against its manifest: size and
    sha256 of every file, full decompression of a single-file backup, and with a ``runner`` that has
    pg_restore, ``pg_restore --list`` of a custom archive. Raises DumpError naming what is wrong."""
    location = storage.location(manifest["file"])
    if manifest["format"] == "directory":
        files = []
        for item in manifest.get("files", []):
            digest = hashlib.sha256()
            size = sum(len(c) for c in hashed(storage.open_chunks("%s/%s" % (manifest["file"], item["path"])),
                                              digest))
            files.append(dict(path=item["path"], size=size, sha256=digest.hexdigest()))
            if (size, digest.hexdigest()) != (item["size"], item["sha256"]):
                raise DumpError("%s/%s is damaged: %d bytes with sha256 %s, the manifest says %d bytes with sha256 %s"
                                % (location, item["path"], size, digest.hexdigest(), item["size"], item["sha256"]))
        if tree_digest(files) != manifest["sha256"]:
            raise DumpError("%s does not hold the files its manifest lists" % location)
        return dict(method="sha256 of every file")
    digest = hashlib.sha256()
    check = InflightCheck(runner, manifest["format"], manifest["compression"])
    size = 0
    try:
        for chunk in hashed(storage.open_chunks(manifest["file"]), digest):
            size += len(chunk)
            check.observe(chunk)
        found = check.finish()
    except DumpError as exc:
        check.abort()
        raise DumpError("%s is damaged: %s" % (location, exc))
    if (size, digest.hexdigest()) != (manifest["size"], manifest["sha256"]):
        raise DumpError("%s is damaged: %d bytes with sha256 %s, the manifest says %d bytes with sha256 %s"
                        % (location, size, digest.hexdigest(), manifest["size"], manifest["sha256"]))
    return found


def verify_directory(runner, path):
    """``pg_restore --list`` of a directory archive (on the runner that can see it)."""
    rc, out, err = runner.run(["pg_restore", "--list", path])
    if rc != 0:
        raise DumpError("verification failed: pg_restore --list cannot read %s: %s" % (path, err.strip()))
    return dict(method="sha256+pg_restore-list", tables_in_archive=count_table_data(out.decode("utf-8", "replace")))
