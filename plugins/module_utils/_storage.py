# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Where backups live: a local directory and an S3 bucket prefix behind one interface (list the
backups of a label from their manifests, remove one, apply retention), plus the local pieces that
make a backup safe to write: a lock per destination and files that only get their final name once
they are complete and on disk."""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import os
import shutil
import time

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils import _lock
from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf

LOCK_FILE = ".stackops-runbook.lock"
READ_SIZE = 1024 * 1024


class StorageError(RunbookError):
    """A storage operation failed; the message says what and where."""


class LockBusy(StorageError):
    pass


class TransferTimeout(RunbookError):
    """An S3 operation ran past s3.transfer_timeout (raised from a botocore event, turned into StorageError)."""


def s3_argument_spec():
    """The ``s3`` option (a dict) shared by the modules that read or write offsite backups."""
    return dict(
        type="dict",
        options=dict(
            bucket=dict(type="str", required=True),
            prefix=dict(type="str", default=""),
            endpoint_url=dict(type="str"),
            region=dict(type="str"),
            access_key=dict(type="str", no_log=False),
            secret_key=dict(type="str", no_log=True),
            session_token=dict(type="str", no_log=True),
            sse=dict(type="str", choices=["AES256", "aws:kms"]),
            sse_kms_key_id=dict(type="str", no_log=False),
            storage_class=dict(type="str"),
            object_lock_mode=dict(type="str", choices=["GOVERNANCE", "COMPLIANCE"]),
            object_lock_days=dict(type="int"),
            validate_certs=dict(type="bool", default=True),
            max_attempts=dict(type="int", default=5),
            connect_timeout=dict(type="int", default=10),
            read_timeout=dict(type="int", default=60),
            transfer_timeout=dict(type="int", default=21600),
            multipart_chunk_size_mb=dict(type="int", default=16),
        ),
    )


def s3_options_error(s3):
    """What is wrong with the ``s3`` option of a module that uploads backups (None when nothing is)."""
    if not s3:
        return None
    prefix = s3.get("prefix") or ""
    if ".." in prefix.split("/"):
        return "s3.prefix=%r must not contain '..'" % prefix
    if (s3.get("multipart_chunk_size_mb") or 16) < 5:
        return "s3.multipart_chunk_size_mb must be 5 or more (S3's smallest part)"
    if bool(s3.get("object_lock_mode")) != bool(s3.get("object_lock_days")):
        return "s3.object_lock_mode and s3.object_lock_days go together: set both (such as GOVERNANCE and 30) or neither"
    if s3.get("object_lock_days") is not None and s3["object_lock_days"] < 1:
        return "s3.object_lock_days=%s must be 1 or more" % s3["object_lock_days"]
    return None


class BackupEntry:
    """One backup in a storage: its name, time and manifest (None for an orphaned data file)."""

    def __init__(self, name, when, manifest, location):
        self.name = name
        self.when = when
        self.manifest = manifest
        self.location = location

    @property
    def verified(self):
        return bool(self.manifest and self.manifest.get("verified"))

    def as_dict(self):
        m = self.manifest or {}
        return dict(name=self.name, location=self.location, time=mf.isoformat(self.when),
                    timestamp=int(self.when.timestamp()), duration_seconds=m.get("duration_seconds"),
                    database=m.get("database"), kind=m.get("kind"), file=m.get("file"),
                    size=m.get("size"), sha256=m.get("sha256"), format=m.get("format"),
                    compression=m.get("compression"), tag=m.get("tag"), verified=self.verified,
                    made_by=(m.get("source") or {}).get("made_by") or "stackops.runbook",
                    encrypted=bool(m.get("encryption")),
                    anomalous=bool(m.get("anomalous")) and not m.get("anomaly_acknowledged"),
                    anomalies=m.get("anomalies") or [])


# how far ahead of this host's clock a backup's time may be and still count as made now
CLOCK_SKEW = datetime.timedelta(minutes=5)


def in_future(entry, now=None):
    """Whether ``entry`` is dated later than now (beyond CLOCK_SKEW): a clock that was wrong, or a copied file."""
    return entry.when > (now or datetime.datetime.now(datetime.timezone.utc)) + CLOCK_SKEW


def future_dated(entries, now=None):
    """The backups dated in the future, as dicts saying so, for results and warnings."""
    return [dict(name=e.name, location=e.location, time=mf.isoformat(e.when),
                 reason="dated in the future (this host's clock says %s): never counted as newer, never pruned; "
                        "check the clocks, then remove or rename it" % mf.isoformat(
                            now or datetime.datetime.now(datetime.timezone.utc)))
            for e in entries if in_future(e, now)]


RETENTION_OPTIONS = ("keep_days", "keep_last", "keep_daily", "keep_weekly", "keep_monthly")

# keep_daily, keep_weekly, keep_monthly: the unit each counts and the bucket (in UTC, as backup names are) of a time
PERIODS = (
    ("keep_daily", "day", lambda when: when.strftime("%Y-%m-%d")),
    ("keep_weekly", "week", lambda when: "%d-W%02d" % when.isocalendar()[:2]),
    ("keep_monthly", "month", lambda when: when.strftime("%Y-%m")),
)


def retention_argument_spec():
    """The retention options of every backup kind (doc fragment: retention)."""
    return {key: dict(type="int") for key in RETENTION_OPTIONS}


def retention_error(params):
    """What is wrong with the retention options of ``params`` (a message naming the option), or None."""
    for key in RETENTION_OPTIONS:
        if params.get(key) is not None and params[key] < 0:
            return "%s=%s cannot be negative" % (key, params[key])
    return None


def retention_plan(entries, rules, now=None, keep=()):
    """What retention does with ``entries``: ``(kept, pruned)``, ``kept`` a list of (entry, [what keeps it]),
    ``pruned`` a list of (entry, why it goes), both newest first.

    ``rules`` holds the RETENTION_OPTIONS (None: not set). A backup stays while any rule keeps it:
    ``keep_last`` (the N newest), ``keep_days`` (younger than N days), and the grandfather-father-son rules
    ``keep_daily``, ``keep_weekly``, ``keep_monthly`` (the newest backup of each of the N newest days, ISO weeks
    and months that have backups, in UTC). With no rule set nothing is removed. The newest verified backup
    always stays, whatever its age, and so do the backups named in ``keep`` (the one this run made). Backups
    dated in the future are never counted as newer and never removed (nor listed)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    ordered = sorted((e for e in entries if not in_future(e, now)), key=lambda e: e.when, reverse=True)
    if all(rules.get(key) is None for key in RETENTION_OPTIONS):
        return [(e, ["no retention set"]) for e in ordered], []
    newest_verified = next((e for e in ordered if e.verified), None)
    why = {id(e): [] for e in ordered}
    for index, entry in enumerate(ordered):
        if entry is newest_verified:
            why[id(entry)].append("the newest verified backup")
        if entry.name in keep:
            why[id(entry)].append("made by this run")
        if rules.get("keep_last") is not None and index < rules["keep_last"]:
            why[id(entry)].append("keep_last: among the newest %d" % rules["keep_last"])
        if rules.get("keep_days") is not None and now - entry.when < datetime.timedelta(days=rules["keep_days"]):
            why[id(entry)].append("keep_days: younger than %d days" % rules["keep_days"])
    for rule, unit, bucket in PERIODS:
        wanted = rules.get(rule)
        seen = []
        for entry in ordered if wanted else ():
            period = bucket(entry.when)
            if period in seen:
                continue
            if len(seen) == wanted:
                break
            seen.append(period)
            why[id(entry)].append("%s: the newest of %s %s" % (rule, unit, period))
    kept = [(e, why[id(e)]) for e in ordered if why[id(e)]]
    pruned = [(e, _prune_reason(e, rules, now)) for e in ordered if not why[id(e)]]
    return kept, pruned


def _prune_reason(entry, rules, now):
    reasons = []
    if rules.get("keep_days") is not None:
        reasons.append("older than %d days (%.1f days)" % (rules["keep_days"], (now - entry.when).total_seconds() / 86400))
    if rules.get("keep_last") is not None:
        reasons.append("not among the newest %d" % rules["keep_last"])
    for rule, unit, _bucket in PERIODS:
        if rules.get(rule) is not None:
            reasons.append("not the newest of one of the %d newest %ss" % (rules[rule], unit))
    return " and ".join(reasons)


def apply_retention(storage, label, kind, params, check_mode, new_entry=None, current=None, future=None,
                    retained=None, locked=None):
    """Remove (in check mode, only list) the backups of ``label`` and ``kind`` that retention lets go of
    (``params`` holds the RETENTION_OPTIONS). ``new_entry`` counts a backup check mode would make;
    ``current`` names the backup this run made, which is never removed; backups dated in the future are
    appended to the list ``future`` (when given) instead; ``retained`` (a list, when given) is filled with
    the backups that stay and what keeps each; ``locked`` (a list, when given) with those retention would
    remove but an S3 Object Lock still protects."""
    entries = storage.list_backups(label, kind)
    if new_entry is not None:
        entries.append(new_entry)
    if future is not None:
        future.extend(f for f in future_dated(entries) if f["name"] not in {x["name"] for x in future})
    keep = {e.name for e in (new_entry,) if e is not None} | ({current} if current else set())
    kept, going = retention_plan(entries, params, keep=keep)
    pruned = []
    for entry, reason in going:
        until = storage.locked_until(entry)
        if until is not None:
            # an S3 Object Lock that has not expired: deleting would only hide it behind a delete marker
            if locked is not None:
                locked.append(dict(name=entry.name, location=entry.location, until=mf.isoformat(until),
                                   reason="%s, but its object lock lasts until %s" % (reason, mf.isoformat(until))))
            continue
        if not check_mode:
            storage.remove(entry)
        pruned.append(dict(name=entry.name, location=entry.location, reason=reason))
    if retained is not None:
        retained[:] = [dict(name=e.name, location=e.location, kept_by=reasons) for e, reasons in kept]
    return pruned


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HashingFile:
    """A new file (mode 0600, never overwriting) that hashes what is written to it."""

    def __init__(self, path, observer=None):
        self.path = path
        self.observer = observer
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.fh = os.fdopen(fd, "wb", buffering=0)
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.fh.write(data)
        self.sha256.update(data)
        self.size += len(data)
        if self.observer is not None:
            self.observer(data)
        return len(data)

    def flush(self):
        pass

    def close(self):
        """Flush to the disk and close."""
        if not self.fh.closed:
            os.fsync(self.fh.fileno())
            self.fh.close()

    def discard(self):
        if not self.fh.closed:
            self.fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(READ_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


class StreamDigest:
    """Size and sha256 of the chunks that pass through ``over``."""

    def __init__(self):
        self.size, self.sha256 = 0, hashlib.sha256()

    def over(self, chunks):
        for chunk in chunks:
            self.size += len(chunk)
            self.sha256.update(chunk)
            yield chunk

    def found(self):
        return self.size, self.sha256.hexdigest()

    def mismatch(self, location, expected):
        """What is wrong when the bytes read differ from ``expected`` (a manifest or one of its files: size,
        sha256), or None."""
        size, sha256 = self.found()
        if (size, sha256) == (expected["size"], expected["sha256"]):
            return None
        return "%s is damaged: %d bytes with sha256 %s, the manifest says %d bytes with sha256 %s" % (
            location, size, sha256, expected["size"], expected["sha256"])


def tree_digest(files):
    """One sha256 for a directory backup: over its sorted ``sha256  relative/path`` lines."""
    lines = "".join("%s  %s\n" % (f["sha256"], f["path"]) for f in sorted(files, key=lambda f: f["path"]))
    return hashlib.sha256(lines.encode()).hexdigest()


class _Storage:
    """What both storages share: finding the backups from their manifests. A storage provides
    ``top_level_names(label)`` (the file names directly in it), ``read_manifest(name)`` and
    ``location(file_name)``."""

    def locked_until(self, entry):
        """When a lock that forbids removing ``entry`` ends (None: it may be removed now)."""
        return None

    def list_backups(self, label=None, kind=None):
        """Backups with a manifest of ours (optionally of one label and kind), oldest first."""
        entries = []
        for file_name in self.top_level_names(label):
            name = mf.name_of_manifest_file(file_name)
            if name is None:
                continue
            parsed_label, when = mf.parse_name(name)
            if label is not None and parsed_label != label:
                continue
            manifest = self.read_manifest(name)
            if manifest is None or (kind is not None and manifest.get("kind") != kind):
                continue
            entries.append(BackupEntry(name, when, manifest, self.location(manifest["file"])))
        # names carry the second: backups made within one second (a database and the globals) are in the order
        # they finished, not the order the directory happens to list them in
        return sorted(entries, key=lambda e: (e.when, e.manifest.get("finished_at") or ""))


class LocalStorage(_Storage):
    """Backups in a local directory."""

    kind = "local"

    def __init__(self, directory):
        self.directory = directory

    def path(self, file_name):
        return os.path.join(self.directory, file_name)

    def ensure(self):
        """Create the directory (0700) when missing."""
        if not os.path.isdir(self.directory):
            try:
                os.makedirs(self.directory, mode=0o700)
            except OSError as exc:
                raise StorageError("cannot create the backup directory %s: %s" % (self.directory, exc.strerror))

    @contextlib.contextmanager
    def lock(self, timeout=0):
        """Hold the destination's lock; wait up to ``timeout`` seconds for another run to finish."""
        message = ("another backup run holds the lock on %s (%%(path)s)%%(waited)s. Wait for it to finish, "
                   "or set lock_timeout to wait for it." % self.directory.replace("%", "%%"))
        try:
            with _lock.exclusive_lock(self.path(LOCK_FILE), timeout, message):
                yield
        except _lock.LockBusy as exc:
            raise LockBusy(str(exc))
        except _lock.LockError as exc:
            raise StorageError(str(exc))

    def write_file_atomic(self, file_name, data):
        """Write a small file (a manifest) under its final name, whole or not at all."""
        final = self.path(file_name)
        partial = final + mf.PARTIAL_SUFFIX
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        out = HashingFile(partial)
        try:
            out.write(data)
            out.close()
            os.rename(partial, final)
            _fsync_dir(self.directory)
        except BaseException:
            out.discard()
            raise
        return final

    def claim_name(self, label, when, file_name_of):
        """(name, time) of a new backup of ``label``. Names carry the second: a run that follows another
        within it (it waited for the lock) takes the next second rather than ever reusing a name. Call it
        under the lock."""
        name = mf.backup_name(label, when)
        while os.path.exists(self.path(mf.manifest_file_name(name))) or os.path.exists(self.path(file_name_of(name))):
            time.sleep(0.2)
            when = datetime.datetime.now(datetime.timezone.utc)
            name = mf.backup_name(label, when)
        return name, when

    def commit(self, partial_path, final_path):
        """Give a complete, fsynced backup (file or directory) its final name."""
        os.rename(partial_path, final_path)
        _fsync_dir(self.directory)

    def publish(self, partial_path, manifest):
        """Give a complete, verified backup its final name, then write its manifest last. When either step
        fails, nothing of the backup stays (without its manifest it would not count as one)."""
        final = self.path(manifest["file"])
        manifest_name = mf.manifest_file_name(manifest["name"])
        try:
            self.commit(partial_path, final)
            self.write_file_atomic(manifest_name, mf.dumps(manifest))
        except OSError as exc:
            self.remove_path(partial_path)
            self.remove_path(final)
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            raise StorageError("%s while writing %s in %s, so the backup was removed (without its manifest it "
                               "is not a backup). %s" % (
                                   "the destination is full (%s)" % exc.strerror if full else exc.strerror or exc,
                                   manifest_name, self.directory,
                                   "Free space there or choose another dest" if full else "Fix the destination"))
        except BaseException:
            self.remove_path(final)
            raise
        return final

    def read_manifest(self, name):
        try:
            with open(self.path(mf.manifest_file_name(name)), "rb") as fh:
                return mf.loads(fh.read(), name)
        except OSError:
            return None

    def top_level_names(self, label=None):
        try:
            return os.listdir(self.directory)
        except FileNotFoundError:
            return []

    def location(self, file_name):
        return self.path(file_name)

    def open_chunks(self, file_name):
        """The chunks of a file of this storage (a path relative to it)."""
        path = self.path(file_name)
        try:
            with open(path, "rb") as fh:
                yield from iter(lambda: fh.read(READ_SIZE), b"")
        except OSError as exc:
            raise StorageError("cannot read %s: %s" % (path, exc.strerror or exc))

    def stale_partials(self, label):
        """Leftovers of runs that died (only called while holding the lock, so none is in use)."""
        found = []
        for file_name in sorted(os.listdir(self.directory)):
            if not file_name.endswith(mf.PARTIAL_SUFFIX):
                continue
            stem = file_name[:-len(mf.PARTIAL_SUFFIX)]
            parsed = mf.parse_name(stem.split(".", 1)[0]) if stem.startswith(label + "_") else None
            if parsed and parsed[0] == label:
                found.append(self.path(file_name))
        return found

    @staticmethod
    def remove_path(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def remove(self, entry):
        """Remove the data, then the manifest (a manifest without data is pruned next time)."""
        self.remove_path(entry.location)
        self.remove_path(self.path(mf.manifest_file_name(entry.name)))


def _s3_error(exc, what):
    import botocore.exceptions
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        return "%s: %s %s" % (what, err.get("Code"), err.get("Message", ""))
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "%s: no AWS credentials; set s3.access_key and s3.secret_key or the AWS_* environment" % what
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return "%s: cannot reach the S3 endpoint (%s); check s3.endpoint_url and the network" % (what, exc)
    return "%s: %s" % (what, exc)


class S3Storage(_Storage):
    """Backups under a prefix of an S3 bucket (AWS S3, MinIO, any S3 API)."""

    kind = "s3"

    def __init__(self, options):
        # boto3 is imported here, not at the top: it takes 0.1 s and most runs never touch S3.
        # Modules call require_libraries(boto3=...) before they build an S3Storage.
        import boto3
        import botocore.config
        import botocore.exceptions
        from boto3.s3.transfer import TransferConfig

        self.errors = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, TransferTimeout)
        self.upload_errors = self.errors + (boto3.exceptions.S3UploadFailedError,)
        self.options = options
        self.bucket = options["bucket"]
        self.prefix = (options.get("prefix") or "").strip("/")
        config = botocore.config.Config(
            retries={"max_attempts": max(1, options.get("max_attempts") or 5), "mode": "standard"},
            connect_timeout=max(1, options.get("connect_timeout") or 10),
            read_timeout=max(1, options.get("read_timeout") or 60),
        )
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=options.get("endpoint_url"), region_name=options.get("region"),
            aws_access_key_id=options.get("access_key"), aws_secret_access_key=options.get("secret_key"),
            aws_session_token=options.get("session_token"), verify=options.get("validate_certs", True),
            config=config)
        # no attempt starts once an operation has run for transfer_timeout: retries times read timeouts
        # would otherwise keep a dead endpoint's backup waiting for many minutes
        self.transfer_timeout = max(1, options.get("transfer_timeout") or 21600)
        self._operation_deadline = None
        self.client.meta.events.register("before-send.s3", self._check_deadline)
        chunk = max(5, options.get("multipart_chunk_size_mb") or 16) * 1024 * 1024
        self.transfer = TransferConfig(multipart_threshold=chunk, multipart_chunksize=chunk, max_concurrency=4)

    def _check_deadline(self, **_kwargs):
        deadline = self._operation_deadline
        if deadline is not None and time.monotonic() > deadline:
            raise TransferTimeout("gave up after s3.transfer_timeout (%ss): the endpoint did not complete the "
                                  "operation in time" % self.transfer_timeout)

    @contextlib.contextmanager
    def operation(self):
        """Bound what runs inside by transfer_timeout (nested operations keep the outer deadline)."""
        outer = self._operation_deadline
        if outer is None:
            self._operation_deadline = time.monotonic() + self.transfer_timeout
        try:
            yield
        finally:
            self._operation_deadline = outer

    def key(self, file_name):
        return "%s/%s" % (self.prefix, file_name) if self.prefix else file_name

    def uri(self, file_name):
        return "s3://%s/%s" % (self.bucket, self.key(file_name))

    def _extra_args(self):
        extra = {}
        if self.options.get("sse"):
            extra["ServerSideEncryption"] = self.options["sse"]
            if self.options.get("sse_kms_key_id"):
                extra["SSEKMSKeyId"] = self.options["sse_kms_key_id"]
        if self.options.get("storage_class"):
            extra["StorageClass"] = self.options["storage_class"]
        if self.options.get("object_lock_mode"):
            extra["ObjectLockMode"] = self.options["object_lock_mode"]
            extra["ObjectLockRetainUntilDate"] = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                days=self.options["object_lock_days"])
        return extra

    def locked_until(self, entry):
        """When the Object Lock of the backup's data ends (None when it is not locked, or no longer)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(entry.manifest["file"] + (
                "/" + entry.manifest["files"][0]["path"] if entry.manifest.get("format") == "directory"
                and entry.manifest.get("files") else "")))
        except self.errors:
            return None
        until = head.get("ObjectLockRetainUntilDate")
        if until is None or head.get("ObjectLockMode") is None:
            return None
        return until if until > datetime.datetime.now(datetime.timezone.utc) else None

    def bucket_protection(self):
        """The bucket's versioning and Object Lock settings, as backup_info reports them."""
        found = dict(versioning=None, object_lock=None, default_retention=None)
        try:
            found["versioning"] = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status") or "Disabled"
        except self.errors as exc:
            found["versioning"] = "unknown (%s)" % _s3_error(exc, "get_bucket_versioning")
        try:
            config = self.client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
            found["object_lock"] = config.get("ObjectLockEnabled") or "Disabled"
            found["default_retention"] = (config.get("Rule") or {}).get("DefaultRetention")
        except self.errors as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            found["object_lock"] = "Disabled" if code == "ObjectLockConfigurationNotFoundError" else "unknown (%s)" % (
                _s3_error(exc, "get_object_lock_configuration"))
        return found

    def upload_file(self, local_path, file_name):
        try:
            with self.operation(), open(local_path, "rb") as fh:
                self.client.upload_fileobj(fh, self.bucket, self.key(file_name), ExtraArgs=self._extra_args(),
                                           Config=self.transfer)
        except self.upload_errors as exc:
            raise StorageError(_s3_error(exc, "upload to %s failed" % self.uri(file_name)))

    def upload_backup(self, local, manifest):
        """Upload a backup's data (a file, or every file of a directory backup), then its manifest, so a
        manifest in S3 always means the data before it arrived whole. transfer_timeout bounds all of it."""
        data_path = local.path(manifest["file"])
        with self.operation():
            if os.path.isdir(data_path):
                for item in manifest.get("files", []):
                    self.upload_file(os.path.join(data_path, item["path"]),
                                     "%s/%s" % (manifest["file"], item["path"]))
            else:
                self.upload_file(data_path, manifest["file"])
            manifest_name = mf.manifest_file_name(manifest["name"])
            self.upload_file(local.path(manifest_name), manifest_name)
        return self.uri(manifest["file"])

    def _list_keys(self, prefix):
        keys = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except self.errors as exc:
            raise StorageError(_s3_error(exc, "listing s3://%s/%s failed" % (self.bucket, prefix)))
        return keys

    def read_manifest(self, name):
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(mf.manifest_file_name(name)))["Body"]
            return mf.loads(body.read(), name)
        except self.errors:
            return None

    def top_level_names(self, label=None):
        base = self.key("")
        rests = (key[len(base):] for key in self._list_keys(base + (label + "_" if label else "")))
        return [rest for rest in rests if "/" not in rest]

    def location(self, file_name):
        return self.uri(file_name)

    def open_chunks(self, file_name):
        """The chunks of an object under the prefix, streamed."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(file_name))["Body"]
            yield from body.iter_chunks(READ_SIZE)
        except self.errors as exc:
            raise StorageError(_s3_error(exc, "reading %s failed" % self.uri(file_name)))

    def remove(self, entry):
        data_key = self.key(entry.manifest["file"])
        keys = [data_key]
        if entry.manifest.get("format") == "directory":
            keys = self._list_keys(data_key + "/")
        keys.append(self.key(mf.manifest_file_name(entry.name)))
        try:
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start:start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        except self.errors as exc:
            raise StorageError(_s3_error(exc, "removing %s failed" % entry.location))
