# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

The one backup source of every restore-side module (pg_restore, restore_drill, volume_restore; backup_info
verifies through the same ``_dump.verify_backup``): the storage a run names (``path``, ``s3``, or a file
path), the backup it asks for (``latest`` of a label, a name, a file path, an S3 key), and a local copy of
it checked against its manifest before anything is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._age import AgeError, decrypted_chunks, identity_argument_spec, is_encrypted
from ansible_collections.stackops.runbook.plugins.module_utils._dump import DumpError, verify_backup
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._imported import NotABackup, describe_file
from ansible_collections.stackops.runbook.plugins.module_utils._storage import (
    HashingFile,
    StreamDigest,
    LocalStorage,
    S3Storage,
    in_future,
    s3_argument_spec,
)


# which module restores each kind of backup (every database kind: pg_restore)
RESTORED_BY = {"volume": "volume_restore", "config": "config_restore", "images": "image_restore",
               "database": "pg_restore"}


class RestoreError(RunbookError):
    """A restore step failed; the message says what and what to do."""


class DamagedBackup(RestoreError):
    """The backup does not match its manifest; ``cause`` is what verification found, ``copy`` the file (or
    directory) that was checked."""

    def __init__(self, message, cause, copy):
        super().__init__(message)
        self.cause, self.copy = cause, copy


def backup_source_argument_spec():
    """``backup``, ``path``, ``s3`` and the age identity (see the stackops.runbook.backup_source, storage and
    encryption.identity doc fragments)."""
    return dict(backup=dict(type="str", default="latest"), path=dict(type="path"), s3=s3_argument_spec(),
                **identity_argument_spec())


def open_storage(params):
    """The storage named by ``path`` or ``s3``; a ``backup`` given as an absolute file path names its own."""
    if params.get("s3"):
        return S3Storage(params["s3"])
    backup = params.get("backup") or "latest"
    if params.get("path"):
        return LocalStorage(params["path"])
    if os.path.isabs(backup):
        return LocalStorage(os.path.dirname(backup.rstrip("/")))
    raise RestoreError("say where the backups are: path (a directory), s3, or backup as an absolute file path")


def find_backup(storage, backup, label, kind="database"):
    """The manifest of ``backup``: ``latest`` (of ``label``), a backup name, a file path or an S3 key."""
    if backup in (None, "latest"):
        entries = storage.list_backups(label, kind=kind)
        usable = [e for e in entries if not in_future(e)]
        if not usable:
            future = ", ".join(e.name for e in entries)
            raise RestoreError("no backup of %s found in %s%s" % (label, storage.location(""), (
                " (only backups dated in the future: %s; check the clocks, or name one as backup)" % future)
                if future else ""))
        return usable[-1].manifest
    if isinstance(storage, S3Storage) and "/" in backup.strip("/"):
        base = storage.key("")
        if not backup.startswith(base):
            raise RestoreError("the S3 key %r is outside the prefix %r: name a backup under s3.prefix" % (backup, base))
        backup = backup[len(base):]
    name = os.path.basename(backup.rstrip("/")).split(".", 1)[0]
    manifest = storage.read_manifest(name) if mf.parse_name(name) else None
    if manifest is None and kind != "volume" and os.path.isabs(backup) and os.path.isfile(backup):
        # a dump another tool made (the runbooks' cron job): described from its content
        try:
            return describe_file(backup, label)
        except NotABackup as exc:
            raise RestoreError(str(exc))
    if mf.parse_name(name) is None:
        raise RestoreError("%r is not a backup name (LABEL_YYYYMMDDTHHMMSSZ) nor a file pg_backup wrote" % backup)
    if manifest is None:
        raise RestoreError("backup %s has no manifest in %s (missing, or not written by pg_backup)"
                           % (name, storage.location("")))
    found = manifest.get("kind") if manifest.get("kind") in RESTORED_BY else "database"
    if found != (kind if kind in RESTORED_BY else "database"):
        raise RestoreError("%s is a %s backup; restore it with %s" % (name, manifest.get("kind"), RESTORED_BY[found]))
    return manifest


@contextlib.contextmanager
def private_workdir(prefix):
    """A private (0700) directory for a restore's local copies (S3 downloads, decrypted backups, the table of
    contents a restore reads), removed with what it holds however the run ends."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stage_locally(storage, manifest, workdir, identity=None, what="the backup"):
    """The backup where it can be read locally, and the manifest that describes that copy: a local plain
    backup as it is; one in S3 copied into ``workdir`` so it is read once from the network; an encrypted
    one (local or S3) decrypted into ``workdir`` with ``identity`` as it is read (the copy holds the
    compressed plaintext, its manifest the plaintext's size and sha256). Returns (LocalStorage, manifest)."""
    if is_encrypted(manifest):
        return _decrypt_locally(storage, manifest, LocalStorage(workdir), identity, what)
    if isinstance(storage, LocalStorage):
        return storage, manifest
    local = LocalStorage(workdir)
    files = [item["path"] for item in manifest.get("files", [])]
    names = ["%s/%s" % (manifest["file"], f) for f in files] if manifest["format"] == "directory" else [
        manifest["file"]]
    if manifest["format"] == "directory":
        os.makedirs(local.path(manifest["file"]), mode=0o700)
    for name in names:
        out = HashingFile(local.path(name))
        try:
            for chunk in storage.open_chunks(name):
                out.write(chunk)
            out.close()
        except BaseException:
            out.discard()
            raise
    local.write_file_atomic(mf.manifest_file_name(manifest["name"]), mf.dumps(manifest))
    return local, manifest


def _decrypt_locally(storage, manifest, local, identity, what):
    if identity is None:
        raise RestoreError("%s (%s) is encrypted with age (to %s): give age_identity_file or age_identity, the secret "
                           "key of one of them; nothing was changed" % (
                               what, manifest["name"], ", ".join(manifest["encryption"].get("recipients") or [])))
    facts = manifest["encryption"]
    plain = dict(manifest, file=manifest["file"][:-len(mf.ENCRYPTED_SUFFIX)] if manifest["file"].endswith(
        mf.ENCRYPTED_SUFFIX) else manifest["file"] + ".plain", size=facts["plaintext_size"],
        sha256=facts["plaintext_sha256"], encryption=None)
    stored = StreamDigest()
    location = storage.location(manifest["file"])
    out = HashingFile(local.path(plain["file"]))
    try:
        for chunk in decrypted_chunks(stored.over(storage.open_chunks(manifest["file"])), identity,
                                      "%s (%s)" % (what, manifest["name"])):
            out.write(chunk)
        out.close()
    except AgeError as exc:
        out.discard()
        if "other recipients" in str(exc):
            raise RestoreError("%s; nothing was changed" % exc)
        raise DamagedBackup("%s does not decrypt, so nothing was changed: %s" % (what, exc), exc, location)
    except BaseException:
        out.discard()
        raise
    problem = stored.mismatch(location, manifest)
    if problem:
        out.discard()
        raise DamagedBackup("%s does not match its manifest, so nothing was changed: %s" % (what, problem), None,
                            location)
    local.write_file_atomic(mf.manifest_file_name(plain["name"]), mf.dumps(plain))
    return local, plain


def checked_copy(storage, manifest, workdir, runner=None, what="the backup", seekable=None, identity=None,
                 whole=True):
    """A local copy of the backup and its manifest (``stage_locally``: decrypted with ``identity`` when it
    is encrypted), verified against that manifest (sizes, sha256, full decompression; ``pg_restore --list``
    with a ``runner`` that has it; without ``whole``, a framed archive's table of contents only, see
    ``_dump.verify_backup``). Raises DamagedBackup before anything is touched. A ``seekable``
    (``_restore.SeekableArchive``) is filled in the same pass, and kept only when the backup checks out.
    Returns (LocalStorage, manifest): read the copy with the manifest returned."""
    local, manifest = stage_locally(storage, manifest, workdir, identity, what)
    copy = seekable if seekable is not None and not seekable.in_place(local) and seekable.open() else None
    try:
        verify_backup(local, manifest, runner, copy, whole)
    except BaseException as exc:
        if copy is not None:
            copy.abort()
        if isinstance(exc, DumpError):
            raise DamagedBackup("%s does not match its manifest, so nothing was changed: %s" % (what, exc), exc,
                                local.location(manifest["file"]))
        raise
    if copy is not None:
        copy.close()  # a copy that could not be finished says so (no_room): the restore then streams
    return local, manifest


def checked_as_read(storage, manifest, workdir, runner=None, identity=None, what="the backup"):
    """For a restore that reads a framed archive frame by frame (``_restore.FramedRestore``): the local
    copy (``stage_locally``) and a ``DigestCheck`` that hashes it in a thread of its own while the restore
    goes on, instead of before it (a third of a second per 400 MB with one core idle). Safe because nothing
    the check has not proven reaches the server: the table of contents (every SQL statement of the archive)
    is proven against the manifest's ``toc_sha256`` before it runs, and the rest is only rows going into the
    scratch database, which replaces nothing until the check's ``verdict``. A manifest without
    ``toc_sha256`` (backups before 0.2.0) is checked first (``checked_copy``) and the check is None.
    Returns (LocalStorage, manifest, check)."""
    local, manifest = stage_locally(storage, manifest, workdir, identity, what)
    if not (manifest.get("layout") or {}).get("toc_sha256"):
        return checked_copy(local, manifest, workdir, runner, what, whole=False) + (None,)
    return local, manifest, DigestCheck(local, manifest, what)


class DigestCheck:
    """The size and sha256 of a staged single-file backup, read in a thread of its own. ``first_frame``
    proves the stored bytes of the first frame (the table of contents) against the manifest's
    ``toc_sha256`` at once; ``verdict`` waits for the whole file. Both raise DamagedBackup."""

    def __init__(self, local, manifest, what="the backup"):
        self.local, self.manifest, self.what = local, manifest, what
        self.location = local.location(manifest["file"])
        self._problem = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        digest = StreamDigest()
        try:
            for _chunk in digest.over(self.local.open_chunks(self.manifest["file"])):
                if self._cancelled:
                    return
        except (OSError, RunbookError) as exc:
            self._problem = "%s cannot be read: %s" % (self.location, exc)
            return
        self._problem = digest.mismatch(self.location, self.manifest)

    def first_frame(self, stored):
        """Raise DamagedBackup unless ``stored`` (the first frame's bytes as stored) has the manifest's
        ``toc_sha256``."""
        found, expected = hashlib.sha256(stored).hexdigest(), self.manifest["layout"]["toc_sha256"]
        if found != expected:
            raise self._damaged("%s is damaged: its table of contents (the first %d bytes) has sha256 %s, the "
                                "manifest says %s" % (self.location, len(stored), found, expected))

    def verdict(self):
        """Wait for the whole file's check; raise DamagedBackup when it does not match the manifest."""
        self._thread.join()
        if self._problem:
            raise self._damaged(self._problem)

    def cancel(self):
        """Stop reading (the restore ended without needing the verdict)."""
        self._cancelled = True

    def _damaged(self, problem):
        return DamagedBackup("%s does not match its manifest, so nothing was changed: %s" % (self.what, problem),
                             None, self.location)


def verify_stored(storage, manifest, identity=None, workdir=None):
    """backup_info's check of one stored backup: ``_dump.verify_backup``; for an encrypted one, decrypted
    with ``identity`` into ``workdir`` first, or without an identity the stored file's size and sha256 only
    (a backup host holds public keys only, and that still proves the copy is intact)."""
    if not is_encrypted(manifest):
        return verify_backup(storage, manifest)
    if identity is None:
        stored = StreamDigest()
        for _chunk in stored.over(storage.open_chunks(manifest["file"])):
            pass
        problem = stored.mismatch(storage.location(manifest["file"]), manifest)
        if problem:
            raise DamagedBackup(problem, None, storage.location(manifest["file"]))
        return dict(method="sha256 (encrypted; with age_identity it is also decrypted and decompressed)")
    local, plain = stage_locally(storage, manifest, workdir, identity)
    try:
        found = verify_backup(local, plain)
    except DumpError as exc:
        raise DamagedBackup("%s does not match its manifest: %s" % (manifest["name"], exc), exc,
                            storage.location(manifest["file"]))
    finally:
        local.remove_path(local.path(plain["file"]))
    return dict(found, method="age-decrypt+" + found["method"])
