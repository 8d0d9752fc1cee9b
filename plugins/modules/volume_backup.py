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
  - Retention (O(keep_days), O(keep_last), O(keep_daily), O(keep_weekly), O(keep_monthly)) and the offsite copy (O(s3)) work as in pg_backup; a failed backup
    leaves the earlier ones untouched.
requirements:
  - The Python docker SDK (C(docker))
  - python zstandard (C(zstandard)) with O(compression=zstd)
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.retention
  - stackops.runbook.encryption
  - stackops.runbook.anomaly
  - stackops.runbook.storage
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_docker_storage
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
locked:
  description:
    - The backups in S3 retention would remove but whose Object Lock (O(s3.object_lock_mode)) has not expired; they
      stay, and a later run prunes them once it has.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "uploads_20261101T030000Z", "location": "s3://backups/prod/uploads_20261101T030000Z", "until": "2026-12-01T03:00:00.000000Z",
            "reason": "older than 7 days (21.0 days), but its object lock lasts until 2026-12-01T03:00:00.000000Z"}]
pruned:
  description: Backups that retention removed (in check mode, would remove), locally and in S3.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "myapp_uploads_20261110T030000Z", "reason": "older than 7 days and not among the last 3"}]
retained:
  description: The local backups that stay after retention (in check mode, would stay), newest first, and what keeps each.
  returned: always
  type: list
  elements: dict
  sample:
    - name: app_20261122T030000Z
      location: /var/backups/postgres/app_20261122T030000Z.dump.zst
      kept_by: ["the newest verified backup", "keep_daily: the newest of day 2026-11-22"]
s3_uri:
  description: Where the offsite copy went.
  returned: when s3 is set and not check mode
  type: str
  sample: s3://backups/prod/volumes/myapp_uploads_20261122T030000Z.tar.gz
anomalous:
  description:
    - Whether the backup looks like lost data next to the newest normal backup of its volume (the archive shrank by
      more than O(anomaly_threshold)).
  returned: success and not check mode
  type: bool
  sample: false
anomalies:
  description: What looks lost, one sentence each (empty when nothing does).
  returned: success and not check mode
  type: list
  elements: str
  sample: ["the dump shrank by 97% (52428800 bytes in uploads_20261121T030000Z, 1048576 now)"]
retention_held:
  description: Why retention deleted nothing this run (an anomalous backup not acknowledged).
  returned: when the backup is anomalous and not acknowledged
  type: str
  sample: "uploads_20261122T030000Z looks like lost data next to uploads_20261121T030000Z (...): it is kept"
"""

import datetime

from ansible_collections.stackops.runbook.plugins.module_utils import _backup
from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._volumes import VolumeWriter, get_volume, image_for
from ansible_collections.stackops.runbook.plugins.module_utils._compression import check_level, default_level
from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_argument_spec, docker_client
from ansible_collections.stackops.runbook.plugins.module_utils._storage import LocalStorage


def validate(module):
    p = module.params
    if not mf.is_safe_name(p["volume"]):
        module.fail_json(msg="volume=%r is not a docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, without '..')" % p["volume"])
    problem = check_level(p["compression"], p["compression_level"])
    if problem:
        module.fail_json(msg=problem)
    problem = _backup.pipeline_options_error(p)
    if problem:
        module.fail_json(msg=problem)
    require_libraries(module, docker=True, zstandard=p["compression"] == "zstd", boto3=bool(p["s3"]))


def main():
    spec = docker_argument_spec()
    spec.update(_backup.pipeline_argument_spec())
    spec.update(volume=dict(type="str", required=True),
                compression=dict(type="str", default="gzip", choices=["gzip", "zstd", "none"]),
                compression_level=dict(type="int"), helper_image=dict(type="str"))
    module = RunbookModule(argument_spec=spec, supports_check_mode=True)
    validate(module)
    p = module.params
    level = p["compression_level"] if p["compression_level"] is not None else default_level(p["compression"])
    try:
        client = docker_client(p["docker_host"])
        get_volume(client, p["volume"])
        writer = VolumeWriter(client, p["volume"], image_for(client, p["volume"], p["helper_image"]),
                              p["compression"], level, p["age_recipients"])
        now = datetime.datetime.now(datetime.timezone.utc)
        if module.check_mode:
            result = dict(_backup.plan(LocalStorage(p["dest"]), writer, p, now),
                          msg="check mode: would archive the volume %s" % p["volume"])
        else:
            result = _backup.run(writer, p, now)
    except RunbookError as exc:
        module.fail_from(exc, "backup of the volume %s failed" % p["volume"], kept=_backup.NOTHING_KEPT)
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
