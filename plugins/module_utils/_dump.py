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

from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils.compression import (
    CompressionError,
    compressing_writer,
    decompressed_chunks,
)
from ansible_collections.stackops.runbook.plugins.module_utils.storage import (
    HashingFile,
    read_chunks,
    tree_digest,
)

PLAIN_DUMP_END = (b"-- PostgreSQL database dump complete", b"-- PostgreSQL database cluster dump complete")
TAIL_BYTES = 512


class DumpError(Exception):
    """The dump or its verification failed; nothing was kept."""


def pg_dump_argv(database, fmt, jobs=None, snapshot=None, dir_compression=None, out_dir=None):
    """argv of pg_dump for one database. Single-file formats go to stdout uncompressed (we compress,
    in parallel threads); the directory format writes its own files, compressed by pg_dump."""
    argv = ["pg_dump", "--no-password"]
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
        return DumpError("the destination is full (%s) while writing %s; the partial file was removed and "
                         "older backups are untouched. Free space or choose another dest." % (exc.strerror, path))
    return DumpError("cannot write %s: %s" % (path, exc))


def dump_to_file(runner, argv, partial_path, fmt, compression, level, on_started=None):
    """Stream ``argv``'s stdout through compression into a new ``partial_path``; fsync it.
    Returns (size, sha256, uncompressed bytes). On any failure the partial file is removed."""
    out = HashingFile(partial_path)
    stream = None
    try:
        writer = compressing_writer(compression, level, out)
        stream = runner.stream(argv)
        if on_started:
            on_started(stream)
        raw_bytes = 0
        tail = b""
        for chunk in iter(stream.read, b""):
            raw_bytes += len(chunk)
            writer.write(chunk)
            tail = (tail + chunk)[-TAIL_BYTES:]
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
        return out.size, out.sha256.hexdigest(), raw_bytes
    except OSError as exc:
        _abort(stream, out)
        raise _disk_error(exc, partial_path)
    except BaseException:
        _abort(stream, out)
        raise


def _abort(stream, out):
    if stream is not None:
        stream.kill()
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


def verify_file(runner, path, fmt, compression, sha256):
    """Read a single-file backup back: sha256, full decompression, the plain dump's completion line
    or ``pg_restore --list`` for a custom archive. Returns what it found (dict)."""
    digest = hashlib.sha256()
    found = dict(method="sha256+decompress")
    try:
        chunks = decompressed_chunks(compression, read_chunks(path, digest))
        if fmt == "plain":
            tail = b""
            for chunk in chunks:
                tail = (tail + chunk)[-TAIL_BYTES:]
            if not any(marker in tail for marker in PLAIN_DUMP_END):
                raise DumpError("verification failed: %s does not end with pg_dump's completion line" % path)
            found["method"] += "+completion-line"
        else:
            rc, out, err = runner.run(["pg_restore", "--list"], input_chunks=chunks)
            if rc != 0:
                raise DumpError("verification failed: pg_restore --list cannot read %s: %s" % (path, err.strip()))
            found["method"] += "+pg_restore-list"
            found["tables_in_archive"] = count_table_data(out.decode("utf-8", "replace"))
    except CompressionError as exc:
        raise DumpError("verification failed: %s: %s" % (path, exc))
    except OSError as exc:
        raise DumpError("verification failed: cannot read %s back: %s" % (path, exc))
    if digest.hexdigest() != sha256:
        raise DumpError("verification failed: %s reads back with sha256 %s, written as %s (disk or "
                        "filesystem error)" % (path, digest.hexdigest(), sha256))
    return found


def verify_directory(runner, path):
    """``pg_restore --list`` of a directory archive (on the runner that can see it)."""
    rc, out, err = runner.run(["pg_restore", "--list", path])
    if rc != 0:
        raise DumpError("verification failed: pg_restore --list cannot read %s: %s" % (path, err.strip()))
    return dict(method="sha256+pg_restore-list", tables_in_archive=count_table_data(out.decode("utf-8", "replace")))
