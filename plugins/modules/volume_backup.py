#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_backup
short_description: Back up a docker named volume as a compressed tar, with a checksum, a manifest and retention
version_added: 0.1.0
description:
  - Archives a docker named volume (uploads, certificates) the way pg_backup archives a database - the runbooks'
    C(docker run --rm -v uploads:/data alpine tar czf - /data > uploads.tar.gz), done safely.
  - The volume is mounted read-only in a helper container that is created but never started, and the docker
    engine streams its tar; it is compressed, hashed and written to C(NAME.partial), synced, verified (full
    decompression, the tar read to its end-of-archive marker, the file read back) and only then renamed, with
    a manifest beside it.
  - Retention (O(keep_days), O(keep_last)) and the offsite copy (O(s3)) work as in pg_backup; a failed backup
    leaves the earlier ones untouched.
requirements:
  - The Python docker SDK (C(docker))
  - python zstandard (C(zstandard)) with O(compression=zstd)
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.storage
attributes:
  check_mode:
    support: full
    description: Checks the volume and the helper image and says what would be written and pruned.
  diff_mode:
    support: none
    description: A new backup has no meaningful diff.
options:
  volume:
    description: The docker named volume, such as C(myapp_uploads).
    type: str
    required: true
  dest:
    description: Local directory of the backups (created with mode 0700).
    type: path
    required: true
  compression:
    description: Compression of the tar.
    type: str
    choices: [gzip, zstd, none]
    default: gzip
  compression_level:
    description: Compression level; default 6 for gzip, 2 for zstd.
    type: int
  helper_image:
    description:
      - Image of the helper container that mounts the volume. It is never started, so any image works.
      - Default is the image of a container that uses the volume, so nothing is pulled.
    type: str
  docker_host:
    description: The docker daemon; default C(DOCKER_HOST) or the local socket.
    type: str
  keep_days:
    description: Keep backups of this volume younger than this many days.
    type: int
  keep_last:
    description: Keep at least this many newest backups of this volume.
    type: int
  lock_timeout:
    description: Seconds to wait for another backup into O(dest) to finish.
    type: int
    default: 0
seealso:
  - module: stackops.runbook.volume_restore
  - module: stackops.runbook.pg_backup
"""

EXAMPLES = r"""
- name: Back up the uploads volume, keep a week, copy offsite
  stackops.runbook.volume_backup:
    volume: myapp_uploads
    dest: /var/backups/stackops/volumes
    keep_days: 7
    keep_last: 3
    s3:
      bucket: backups
      prefix: prod/volumes
"""

RETURN = r"""
path:
  description: The backup file.
  returned: success
  type: str
  sample: /var/backups/stackops/volumes/myapp_uploads_20261122T030000Z.tar.gz
manifest_path:
  description: Its manifest.
  returned: success
  type: str
  sample: /var/backups/stackops/volumes/myapp_uploads_20261122T030000Z.manifest.json
manifest:
  description: The manifest (volume, size, sha256, members, data_bytes, times).
  returned: success and not check mode
  type: dict
  sample: {"kind": "volume", "volume": "myapp_uploads", "members": 1204, "sha256": "9f86d0..."}
size:
  description: Bytes of the backup file.
  returned: success and not check mode
  type: int
  sample: 10485760
sha256:
  description: Its sha256.
  returned: success and not check mode
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
future_backups:
  description:
    - Backups dated later than this host's clock (beyond five minutes of skew). They are never counted as newer
      and never pruned, and each is reported as a warning (a wrong clock or a copied file; check the clocks).
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "app_20301101T030000Z", "location": "/var/backups/postgres/app_20301101T030000Z.dump.zst",
       "time": "2030-11-01T03:00:00.000000Z", "reason": "dated in the future ..."}
pruned:
  description: Backups that retention removed (in check mode, would remove), locally and in S3.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "myapp_uploads_20261110T030000Z", "reason": "older than 7 days and not among the last 3"}]
s3_uri:
  description: Where the offsite copy went.
  returned: when s3 is set and not check mode
  type: str
  sample: s3://backups/prod/volumes/myapp_uploads_20261122T030000Z.tar.gz
"""

import datetime
import socket
import time

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._dump import DumpError, read_back
from ansible_collections.stackops.runbook.plugins.module_utils._volumes import (
    TarReader,
    archive_chunks,
    get_volume,
    helper,
    image_for,
)
from ansible_collections.stackops.runbook.plugins.module_utils._compression import (
    CompressionError,
    Decompressor,
    check_level,
    compressing_writer,
    default_level,
)
from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerError, docker_client
from ansible_collections.stackops.runbook.plugins.module_utils._storage import (
    BackupEntry,
    HashingFile,
    LocalStorage,
    S3Storage,
    StorageError,
    apply_retention,
    s3_argument_spec,
)

KIND = "volume"


class TarCheck:
    """Decompresses what is written and follows the tar to its end marker, so a backup that would not
    extract is never committed."""

    def __init__(self, compression):
        self.decompressor = Decompressor(compression)
        self.tar = TarReader()

    def __call__(self, compressed):
        self.tar.feed(self.decompressor.feed(compressed))

    def finish(self):
        self.tar.feed(self.decompressor.finish())
        if not self.tar.ended:
            raise DumpError("verification failed: the archive ends before its end-of-archive marker")
        return self.tar


def write_archive(chunks, partial, compression, level):
    check = TarCheck(compression)
    out = HashingFile(partial, observer=check)
    try:
        writer = compressing_writer(compression, level, out)
        raw = 0
        for chunk in chunks:
            raw += len(chunk)
            writer.write(chunk)
        writer.close()
        out.close()
        tar = check.finish()
        read_back(partial, out.sha256.hexdigest())
    except (CompressionError, ValueError) as exc:
        out.discard()
        raise DumpError("verification failed: %s" % exc)
    except BaseException:
        out.discard()
        raise
    return dict(size=out.size, sha256=out.sha256.hexdigest(), data_bytes=tar.bytes, members=tar.members,
                uncompressed_size=raw)


def validate(module):
    p = module.params
    if not mf.is_safe_name(p["volume"]):
        module.fail_json(msg="volume=%r is not a docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, without '..')" % p["volume"])
    problem = check_level(p["compression"], p["compression_level"])
    if problem:
        module.fail_json(msg=problem)
    for key in ("keep_days", "keep_last", "lock_timeout"):
        if p[key] is not None and p[key] < 0:
            module.fail_json(msg="%s=%s cannot be negative" % (key, p[key]))
    require_libraries(module, docker=True, zstandard=p["compression"] == "zstd", boto3=bool(p["s3"]))


def main():
    module = RunbookModule(
        argument_spec=dict(
            volume=dict(type="str", required=True),
            dest=dict(type="path", required=True),
            compression=dict(type="str", default="gzip", choices=["gzip", "zstd", "none"]),
            compression_level=dict(type="int"),
            helper_image=dict(type="str"),
            docker_host=dict(type="str"),
            keep_days=dict(type="int"),
            keep_last=dict(type="int"),
            lock_timeout=dict(type="int", default=0),
            s3=s3_argument_spec(),
        ),
        supports_check_mode=True,
    )
    validate(module)
    p = module.params
    started = time.monotonic()
    now = datetime.datetime.now(datetime.timezone.utc)
    level = p["compression_level"] if p["compression_level"] is not None else default_level(p["compression"])
    local = LocalStorage(p["dest"])
    label = p["volume"]

    def file_name(name):
        return mf.data_file_name(name, "tar", p["compression"])

    result = dict(changed=False, pruned=[], future_backups=[])
    try:
        client = docker_client(p["docker_host"])
        get_volume(client, label)
        image = image_for(client, label, p["helper_image"])
        if module.check_mode:
            name = mf.backup_name(label, now)
            new = BackupEntry(name, now, {"verified": True}, local.path(file_name(name)))
            result.update(changed=True, path=local.path(file_name(name)), pruned=apply_retention(
                local, label, KIND, p, True, new), msg="check mode: would archive the volume %s" % label)
            module.exit_json(**result)
        local.ensure()
        with local.lock(p["lock_timeout"]):
            name, when = local.claim_name(label, now, file_name)
            for leftover in local.stale_partials(label):
                local.remove_path(leftover)
            partial = local.path(file_name(name) + mf.PARTIAL_SUFFIX)
            with helper(client, label, image) as container:
                facts = write_archive(archive_chunks(container), partial, p["compression"], level)
            finished = datetime.datetime.now(datetime.timezone.utc)
            manifest = dict(
                tool=mf.VOLUME_TOOL, manifest_version=mf.MANIFEST_VERSION, name=name, file=file_name(name),
                kind=KIND, volume=label, database=None, format="tar", compression=p["compression"],
                compression_level=level, started_at=mf.isoformat(when), finished_at=mf.isoformat(finished),
                duration_seconds=round((finished - when).total_seconds(), 3), hostname=socket.gethostname(),
                helper_image=image, verified=True, verification=dict(method="sha256+decompress+tar-end-marker"),
                **facts)
            final = local.publish(partial, manifest)
            result.update(changed=True, path=final, manifest_path=local.path(mf.manifest_file_name(name)),
                          manifest=manifest, size=manifest["size"], sha256=manifest["sha256"])
            result["pruned"] += apply_retention(local, label, KIND, p, False, current=name,
                                                future=result["future_backups"])
        if p["s3"]:
            s3 = S3Storage(p["s3"])
            result["s3_uri"] = s3.upload_backup(local, manifest)
            result["pruned"] += apply_retention(s3, label, KIND, p, False, current=name,
                                                future=result["future_backups"])
    except (ContainerError, DumpError, StorageError) as exc:
        where = " The backup itself is complete at %s." % result["path"] if result.get("path") else \
            " Earlier backups are untouched."
        module.fail_json(msg="backup of the volume %s failed: %s.%s" % (label, exc, where),
                         duration=round(time.monotonic() - started, 3), **result)
    module.warn_future_backups(result["future_backups"])
    result["duration"] = round(time.monotonic() - started, 3)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
