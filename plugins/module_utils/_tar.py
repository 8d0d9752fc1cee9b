# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Tar streams: following one to its end-of-archive marker while it is written or read (``TarReader``,
``TarCheck``, the check of the volume and config kinds), writing files of the host into one as chunks
(``file_tar_chunks``, the config kind) and extracting one safely onto the host (``extract_files``).
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import stat
import tarfile

from ansible_collections.stackops.runbook.plugins.module_utils._backup import BackupError
from ansible_collections.stackops.runbook.plugins.module_utils._compression import CompressionError, Decompressor
from ansible_collections.stackops.runbook.plugins.module_utils._storage import file_sha256

BLOCK = 512
ZERO_BLOCK = b"\0" * BLOCK


class TarReader:
    """Follows a tar stream fed in pieces: counts its members and their bytes, and says whether it ended
    with the end-of-archive marker (two zero blocks), which a truncated archive lacks."""

    def __init__(self):
        self.buffer = b""
        self.skip = 0
        self.members = 0
        self.bytes = 0
        self.zero_blocks = 0
        self.ended = False

    def feed(self, data):
        buffer = self.buffer + data
        pos = 0
        while not self.ended:
            if self.skip:
                taken = min(self.skip, len(buffer) - pos)
                pos += taken
                self.skip -= taken
                if self.skip:
                    break
            if len(buffer) - pos < BLOCK:
                break
            header = buffer[pos:pos + BLOCK]
            pos += BLOCK
            if header == ZERO_BLOCK:
                self.zero_blocks += 1
                self.ended = self.zero_blocks >= 2
                continue
            self.zero_blocks = 0
            size = self._size(header[124:136])
            kind = header[156:157]
            if kind not in (b"x", b"g", b"L", b"K"):  # pax and GNU long-name headers describe the next member
                self.members += 1
                if kind in (b"0", b"\0", b"7"):
                    self.bytes += size
            self.skip = (size + BLOCK - 1) // BLOCK * BLOCK
        # keep only the unread part: what follows the end marker (padding) is dropped
        self.buffer = b"" if self.ended else buffer[pos:]

    @staticmethod
    def _size(field):
        if field[:1] == b"\x80":  # base-256 for large files
            return int.from_bytes(field[1:], "big")
        text = field.rstrip(b"\0 ").strip()
        try:
            return int(text or b"0", 8)
        except ValueError:
            raise ValueError("not a tar stream (bad size field %r)" % field)


class TarCheck:
    """Decompresses what is written and follows the tar to its end marker, so a backup that would not
    extract is never committed."""

    def __init__(self, compression):
        self.decompressor = Decompressor(compression)
        self.tar = TarReader()

    def observe(self, compressed):
        try:
            self.tar.feed(self.decompressor.feed(compressed))
        except (CompressionError, ValueError) as exc:
            raise BackupError("verification failed: %s" % exc)

    def finish(self):
        try:
            self.tar.feed(self.decompressor.finish())
        except (CompressionError, ValueError) as exc:
            raise BackupError("verification failed: %s" % exc)
        if not self.tar.ended:
            raise BackupError("verification failed: the archive ends before its end-of-archive marker")
        return dict(method="sha256+decompress+tar-end-marker")

    def abort(self):
        pass


class ChunkReader:
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


class _Collector:
    """Where tarfile writes: the pieces are taken out after each member, so the tar streams."""

    def __init__(self):
        self.pieces = []

    def write(self, data):
        self.pieces.append(bytes(data))
        return len(data)

    def take(self):
        pieces, self.pieces = self.pieces, []
        return pieces


class _HashingReader:
    def __init__(self, fh):
        self.fh = fh
        self.sha256 = hashlib.sha256()

    def read(self, size=-1):
        data = self.fh.read(size)
        self.sha256.update(data)
        return data


def _excluded(path, exclude):
    return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(os.path.basename(path), p) for p in exclude)


def missing_path_error(paths):
    """The message for the first of ``paths`` that does not exist on this host, or None."""
    for path in paths:
        if not os.path.lexists(os.path.normpath(path)):
            return "paths: %s does not exist on this host; remove it from the list or create it" % os.path.normpath(path)
    return None


def host_paths(paths, exclude=()):
    """Every file, directory and symlink of ``paths`` (absolute; directories walked, symlinks not followed),
    sorted, without those matching an ``exclude`` pattern (on the path or its base name). Raises
    BackupError naming a path that does not exist."""
    problem = missing_path_error(paths)
    if problem:
        raise BackupError(problem)
    found = []
    for path in paths:
        path = os.path.normpath(path)
        if _excluded(path, exclude):
            continue
        found.append(path)
        if os.path.isdir(path) and not os.path.islink(path):
            for top, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not _excluded(os.path.join(top, d), exclude))
                found.extend(os.path.join(top, name) for name in sorted(dirs + files)
                             if not _excluded(os.path.join(top, name), exclude))
    unique = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def file_tar_chunks(paths, entries):
    """The chunks of a tar (PAX) of the host ``paths`` (from ``host_paths``), each stored under its absolute
    path without the leading ``/``. Appends to ``entries`` what each member is (path, type, mode, owner,
    size, and the sha256 of a file's bytes as stored), for the manifest. Sockets and devices are skipped."""
    sink = _Collector()
    tar = tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT)
    for path in paths:
        info = tar.gettarinfo(path, arcname=path.lstrip("/"))
        if info is None or not (info.isreg() or info.isdir() or info.issym()):
            continue
        entry = dict(path=path, type="file" if info.isreg() else "directory" if info.isdir() else "symlink",
                     mode="%04o" % stat.S_IMODE(info.mode), uid=info.uid, gid=info.gid)
        if info.isreg():
            with open(path, "rb") as fh:
                reader = _HashingReader(fh)
                tar.addfile(info, reader)
            entry.update(size=info.size, sha256=reader.sha256.hexdigest())
        else:
            if info.issym():
                entry["target"] = info.linkname
            tar.addfile(info)
        entries.append(entry)
        yield from sink.take()
    tar.close()
    yield from sink.take()


def target_of(root, path):
    """Where the archived absolute ``path`` goes under ``root``; raises ValueError for a path that would leave it."""
    relative = os.path.normpath(path.lstrip("/"))
    if relative.startswith("..") or os.path.isabs(relative):
        raise ValueError("the archive names %r, which is outside the restore root" % path)
    return os.path.join(root, relative) if relative != "." else root


def plan_extraction(entries, root):
    """What extracting ``entries`` (a config manifest's) under ``root`` does to each: ``create``,
    ``replace`` (differs from what is there) or ``same``. Returns {path: action}."""
    plan = {}
    for entry in entries:
        target = target_of(root, entry["path"])
        if not os.path.lexists(target):
            action = "create"
        elif entry["type"] == "directory":
            action = "same" if os.path.isdir(target) and not os.path.islink(target) else "replace"
        elif entry["type"] == "symlink":
            action = "same" if os.path.islink(target) and os.readlink(target) == entry["target"] else "replace"
        elif os.path.isfile(target) and not os.path.islink(target):
            same = file_sha256(target) == entry["sha256"] and "%04o" % stat.S_IMODE(os.stat(target).st_mode) == entry[
                "mode"]
            action = "same" if same else "replace"
        else:
            action = "replace"
        plan[entry["path"]] = action
    return plan


def extract_files(chunks, root, plan):
    """Write the members of the tar ``chunks`` whose ``plan`` action is not ``same`` under ``root``: each file
    through a temporary file in its directory, synced, then renamed over the old one (a failure leaves
    every file either old or new, never half written), with its mode (and owner, as root). Returns the
    paths written."""
    written = []
    with tarfile.open(fileobj=ChunkReader(chunks), mode="r|") as tar:
        for member in tar:
            path = "/" + member.name.lstrip("/")
            if plan.get(path, "same") == "same":
                continue
            target = target_of(root, path)
            if member.isdir():
                if os.path.lexists(target) and not os.path.isdir(target):
                    os.unlink(target)
                os.makedirs(target, exist_ok=True)
                os.chmod(target, stat.S_IMODE(member.mode))
            elif member.issym():
                _replace_with(target, lambda tmp, m=member: os.symlink(m.linkname, tmp))
            elif member.isreg():
                source = tar.extractfile(member)
                _replace_with(target, lambda tmp, src=source: _copy_into(src, tmp), member.mode)
            else:
                continue
            if os.geteuid() == 0:
                os.lchown(target, member.uid, member.gid)
            written.append(path)
    return written


def _copy_into(source, path):
    with open(path, "wb") as fh:
        for block in iter(lambda: source.read(1024 * 1024), b""):
            fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())


def _replace_with(target, make, mode=None):
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, ".%s.stackops-%s" % (os.path.basename(target), os.urandom(4).hex()))
    try:
        make(tmp)
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode))
        if os.path.isdir(target) and not os.path.islink(target):
            raise OSError(errno.EISDIR, "a directory is in the way", target)
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
