# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

The one backup pipeline every backup kind goes through:

    lock the destination → claim a unique name → sweep stale partials → the kind's writer fills
    ``NAME.partial`` (streamed through the stages, hashed in flight, fsynced, verified) → compared with
    the last normal backup of its series (``_anomaly``) → rename → manifest last → retention (held while
    the backup looks like lost data) → offsite copy

A kind (database, all databases, globals, docker volume, config files, images) is a ``BackupWriter``: it names its files,
fills the partial and returns the facts its manifest records. Everything the collection promises about a
backup lives here, once: a partial file never looks complete, the manifest is written last, a failure
before the rename keeps nothing, a failure after it keeps the complete backup and says so, retention never
removes the backup this run made or the newest verified one.

``write_stream`` is the stage chain of a single-file backup: compression, then (with ``age_recipients``)
age encryption; the check sees the compressed plaintext, the sha256 is taken of both it and the bytes
that reach the file.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import os
import socket

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._anomaly import (
    anomaly_argument_spec,
    anomaly_facts,
    anomaly_options_error,
    baseline,
)
from ansible_collections.stackops.runbook.plugins.module_utils._age import (
    AgeError,
    Encryptor,
    encryption_facts,
    recipients_argument_spec,
    recipients_options_error,
)
from ansible_collections.stackops.runbook.plugins.module_utils._archive_layout import FramedWriter
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._compression import CompressionError, compressing_writer
from ansible_collections.stackops.runbook.plugins.module_utils._storage import (
    BackupEntry,
    HashingFile,
    LocalStorage,
    S3Storage,
    StorageError,
    apply_retention,
    file_sha256,
    retention_argument_spec,
    retention_error,
    s3_argument_spec,
    s3_options_error,
)

NOTHING_KEPT = "Nothing was kept and older backups are untouched."


def pipeline_argument_spec():
    """What every backup kind takes from the pipeline: ``dest``, ``lock_timeout``, ``s3`` and the retention,
    encryption and anomaly options (doc fragments retention, encryption, anomaly, storage)."""
    spec = dict(dest=dict(type="path", required=True), lock_timeout=dict(type="int", default=0),
                s3=s3_argument_spec())
    spec.update(retention_argument_spec())
    spec.update(recipients_argument_spec())
    spec.update(anomaly_argument_spec())
    return spec


def pipeline_options_error(params):
    """What is wrong with the pipeline's options (a message naming the option), or None."""
    if not os.path.isabs(params["dest"]):
        return "dest=%r must be an absolute path" % params["dest"]
    if params["lock_timeout"] < 0:
        return "lock_timeout=%s cannot be negative" % params["lock_timeout"]
    return (retention_error(params) or recipients_options_error(params) or anomaly_options_error(params)
            or s3_options_error(params["s3"]))


class BackupError(RunbookError):
    """Writing or verifying a backup failed (nothing of it was kept), or a stored backup does not check out."""


class KeptBackupError(RunbookError):
    """A step after the backup was made failed (retention, offsite copy): the backup itself is kept."""

    def __init__(self, message, result, kept=None):
        super().__init__(message, result)
        self.kept = kept or ("The local backup is complete and verified at %s; rerun once the cause is fixed, or "
                             "copy it by hand." % result["path"])


class BackupWriter:
    """One backup kind. Subclasses set ``kind`` (the manifest's kind), ``label`` (the name's prefix, one
    retention series) and ``tool``, and implement ``file_name`` and ``write``."""

    kind = None
    label = None
    tool = mf.TOOL

    def file_name(self, name):
        """The data file (or directory) name of the backup ``name``."""
        raise NotImplementedError

    def write(self, name, partial):
        """Fill ``partial`` (a new file or directory), fsync and verify it; return the manifest's facts
        (at least size and sha256). Called under the destination's lock. On any failure nothing of
        ``partial`` may stay."""
        raise NotImplementedError


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def plan(local, writer, params, now):
    """Check mode: where the backup would go and what retention would remove with it counted."""
    name = mf.backup_name(writer.label, now)
    path = local.path(writer.file_name(name))
    future, retained = [], []
    pruned = apply_retention(local, writer.label, writer.kind, params, True,
                             BackupEntry(name, now, {"verified": True}, path), future=future, retained=retained)
    return dict(changed=True, path=path, manifest_path=local.path(mf.manifest_file_name(name)), pruned=pruned,
                retained=retained, removed_partials=[], future_backups=future)


def run(writer, params, now=None):
    """Make one backup with ``writer`` into ``params['dest']`` (and ``params['s3']``), applying the retention
    options (``_storage.RETENTION_OPTIONS``); returns the module's result. Raises BackupError subclasses (nothing kept),
    KeptBackupError (the backup is kept) or the writer's errors."""
    local = LocalStorage(params["dest"])
    result = dict(changed=False, removed_partials=[], pruned=[], retained=[], future_backups=[], locked=[])
    local.ensure()
    with local.lock(params["lock_timeout"]):
        name, started = local.claim_name(writer.label, now or _now(), writer.file_name)
        for leftover in local.stale_partials(writer.label):
            local.remove_path(leftover)
            result["removed_partials"].append(leftover)
        facts = writer.write(name, local.path(writer.file_name(name) + mf.PARTIAL_SUFFIX))
        previous = baseline(local.list_backups(writer.label, kind=writer.kind), name)
        finished = _now()
        manifest = dict(tool=writer.tool, manifest_version=mf.MANIFEST_VERSION, name=name,
                        file=writer.file_name(name), kind=writer.kind, started_at=mf.isoformat(started),
                        finished_at=mf.isoformat(finished),
                        duration_seconds=round((finished - started).total_seconds(), 3),
                        hostname=socket.gethostname())
        manifest.update(facts)
        manifest.update(anomaly_facts(previous, manifest, params))
        final = local.publish(local.path(manifest["file"] + mf.PARTIAL_SUFFIX), manifest)
        result.update(changed=True, path=final, manifest_path=local.path(mf.manifest_file_name(name)),
                      manifest=manifest, sha256=manifest["sha256"], size=manifest["size"],
                      anomalous=manifest["anomalous"], anomalies=manifest["anomalies"])
        held = manifest["anomalous"] and not manifest.get("anomaly_acknowledged")
        if held:
            result["retention_held"] = (
                "%s looks like lost data next to %s (%s): it is kept, and retention deleted nothing of %s, locally or "
                "offsite. Look at the database; once the change is intended, back up with anomaly_acknowledge: true"
                % (name, manifest["compared_with"], "; ".join(manifest["anomalies"]), writer.label))
        else:
            try:
                result["pruned"] += apply_retention(local, writer.label, writer.kind, params, False, current=name,
                                                    future=result["future_backups"], retained=result["retained"])
            except StorageError as exc:
                raise KeptBackupError("retention failed: %s" % exc, result)
    if params.get("s3"):
        try:
            s3 = S3Storage(params["s3"])
            result["s3_uri"] = s3.upload_backup(local, manifest)
            if not held:
                result["pruned"] += apply_retention(s3, writer.label, writer.kind, params, False, current=name,
                                                    future=result["future_backups"], locked=result["locked"])
        except StorageError as exc:
            raise KeptBackupError("offsite copy failed: %s" % exc, result)
    if held and params["on_anomaly"] == "fail":
        raise KeptBackupError("on_anomaly=fail: " + result["retention_held"], result, kept=(
            "The backup is complete and verified at %s%s, and every older backup is kept." % (
                result["path"], " and offsite" if result.get("s3_uri") else "")))
    return result


def disk_error(exc, path):
    """The BackupError for an OSError while writing ``path`` (a full disk says so, and what to do)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return BackupError("the destination is full (%s) while writing %s; the partial file was removed. Free space "
                           "or choose another dest" % (exc.strerror, path))
    return BackupError("cannot write %s: %s" % (path, exc))


def read_back(path, sha256):
    """Read a written file back from the disk and compare its sha256 with what was written."""
    try:
        found = file_sha256(path)
    except OSError as exc:
        raise BackupError("verification failed: cannot read %s back: %s" % (path, exc))
    if found != sha256:
        raise BackupError("verification failed: %s reads back with sha256 %s, written as %s (disk or filesystem "
                          "error)" % (path, found, sha256))


class _Plaintext:
    """The compressed stream on its way to the encrypting stage: hashed, and shown to the check (which can
    read it, where the encrypted bytes would need the secret key the backup host does not have)."""

    def __init__(self, sink, observer):
        self.sink, self.observer = sink, observer
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        if self.observer is not None:
            self.observer(data)
        return self.sink.write(data)


def write_stream(chunks, partial, compression, level, check=None, recipients=None, framed=False):
    """The stages of a single-file backup: ``chunks`` → compression → (age encryption to ``recipients``)
    → sha256 → a new ``partial`` → fsync. ``check`` (optional) sees every compressed byte (``observe``),
    says whether the whole checks out (``finish`` returns the verification facts or raises) and lets go of
    what it holds (``abort``); with it the file is also read back from the disk. Returns the manifest's
    facts: size and sha256 of the stored file, uncompressed_size, verification, and for an encrypted
    backup ``encryption`` (recipients, size and sha256 of the compressed plaintext). ``framed`` (a custom
    archive, compressed with zstd or not at all): the compressed stream is cut into frames at the tables'
    data (``_archive_layout.FramedWriter``) and ``layout`` says where, for a parallel restore. On any
    failure, also a failure inside ``chunks``, the partial file is removed."""
    observer = check.observe if check else None
    try:
        out = HashingFile(partial, observer=None if recipients else observer)
    except OSError as exc:
        if check is not None:
            check.abort()
        raise disk_error(exc, partial)
    encryptor = plain = None
    try:
        if recipients:
            encryptor = Encryptor(recipients, out)
            plain = _Plaintext(encryptor, observer)
        stored = plain or out
        compressor = compressing_writer(compression, level, stored)
        framer = FramedWriter(compressor, lambda: stored.size, lambda: stored.sha256.copy().hexdigest()) if (
            framed and compression in ("zstd", "none")) else None
        writer = framer or compressor
        raw_bytes = 0
        for chunk in chunks:
            raw_bytes += len(chunk)
            writer.write(chunk)
        if framer:
            framer.close()
        compressor.close()
        if encryptor:
            encryptor.close()
            encryptor = None
        out.close()
        facts = dict(size=out.size, sha256=out.sha256.hexdigest(), uncompressed_size=raw_bytes)
        layout = framer.layout() if framer else None
        if layout:
            facts["layout"] = layout
        if plain:
            facts["encryption"] = encryption_facts(recipients, plain.size, plain.sha256.hexdigest())
        if check:
            facts["verification"] = check.finish()
            read_back(partial, facts["sha256"])
        return facts
    except CompressionError as exc:
        _abort(out, check, encryptor)
        raise BackupError("verification failed: %s" % exc)
    except AgeError as exc:
        _abort(out, check, encryptor)
        raise BackupError("encryption failed: %s" % exc)
    except OSError as exc:
        _abort(out, check, encryptor)
        raise disk_error(exc, partial)
    except BaseException:
        _abort(out, check, encryptor)
        raise


def _abort(out, check, encryptor=None):
    if encryptor is not None:
        encryptor.abort()
    if check is not None:
        check.abort()
    out.discard()
