# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Backups made by other tools - the runbooks' own cron jobs (``pg_dump | gzip > app.sql.gz``, ``pg_dump -Fc >
app.dump``, ``pg_dumpall > cluster.sql``): recognised by their content, not their name, and described by a
manifest made on the spot, so that backup_info, pg_restore and restore_drill read them like ours (they have no
row counts: they are graded without, or against the live source), and backup_import can adopt them."""

from __future__ import annotations

import datetime
import hashlib
import os

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._compression import CompressionError, Decompressor

EXTERNAL_TOOL = "external"
MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"))
CLUSTER_MARKER = b"PostgreSQL database cluster dump"
READ_SIZE = 1024 * 1024


class NotABackup(RunbookError):
    """The file is not a PostgreSQL dump this collection can read; the message says why."""


def _content_head(path, compression, wanted=8192):
    """The first ``wanted`` bytes of the file's content, decompressed."""
    decompressor = Decompressor(compression)
    head = b""
    with open(path, "rb") as fh:
        while len(head) < wanted:
            chunk = fh.read(65536)
            if not chunk:
                break
            try:
                head += decompressor.feed(chunk)
            except CompressionError as exc:
                raise NotABackup("%s: %s" % (path, exc))
    return head[:wanted]


def describe_file(path, label=None):
    """A manifest for a dump file another tool wrote: compression from its magic bytes, format from its content
    (``PGDMP`` starts a custom archive, else plain SQL), kind (a pg_dumpall cluster dump or one database), size,
    sha256 and the file's time. Raises NotABackup for anything else."""
    if not os.path.isfile(path):
        raise NotABackup("%s is not a file" % path)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    compression = next((name for prefix, name in MAGIC if magic.startswith(prefix)), "none")
    head = _content_head(path, compression)
    if head.startswith(b"PGDMP"):
        fmt, kind = "custom", "database"
    elif CLUSTER_MARKER in head:
        fmt, kind = "plain", "all_databases"
    elif b"PostgreSQL database dump" in head or b"CREATE TABLE" in head or b"SET " in head:
        fmt, kind = "plain", "database"
    else:
        raise NotABackup("%s is neither a pg_dump archive nor SQL (plain, gzip or zstd)" % path)
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(READ_SIZE), b""):
            digest.update(chunk)
            size += len(chunk)
    taken = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    return dict(tool=EXTERNAL_TOOL, manifest_version=mf.MANIFEST_VERSION, name=os.path.basename(path),
                file=os.path.basename(path), kind=kind, database=label if kind == "database" else None,
                format=fmt, compression=compression, size=size, sha256=digest.hexdigest(),
                finished_at=mf.isoformat(taken), row_counts=None, verified=False,
                source=dict(mode="file", path=path, made_by="another tool"))


def is_external(manifest):
    """Whether another tool made the backup (read in place, or adopted by backup_import): it has no row counts."""
    manifest = manifest or {}
    return manifest.get("tool") == EXTERNAL_TOOL or bool(manifest.get("imported_from"))
