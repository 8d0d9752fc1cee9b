#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: config_backup
short_description: Back up the files a server needs to run its stack again (compose and env files, proxy config, ledgers)
version_added: 0.2.0
description:
  - Archives files and directories of the managed host - the compose project's compose files, C(.env) and other env
    files, the proxy's config (a Caddyfile), the collection's own state (release ledger, audit ledger, drill logs) -
    as one compressed tar with a manifest, through the same pipeline as pg_backup and volume_backup (a C(NAME.partial)
    that never looks complete, verification to the tar's end marker, the manifest last, retention, the offsite copy,
    encryption, the anomaly guard).
  - Each member keeps its absolute path, mode and owner, and the manifest lists every entry with its size and sha256,
    so M(stackops.runbook.config_restore) puts the files back where they were on a fresh server and says beforehand
    what it would change.
  - Env files hold secrets, so a copy to O(s3) is refused unless it is encrypted (O(age_recipients)) or
    O(allow_plaintext=true) says to send it unencrypted.
requirements:
  - python zstandard (C(zstandard)) with O(compression=zstd)
  - the C(age) program with O(age_recipients)
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.retention
  - stackops.runbook.encryption
  - stackops.runbook.anomaly
  - stackops.runbook.storage
  - stackops.runbook._attributes.actiongroup_storage
attributes:
  check_mode:
    support: full
    description: Checks that every path exists and says what would be written and pruned.
  diff_mode:
    support: none
    description: A new backup has no meaningful diff.
options:
  paths:
    description:
      - Absolute paths of the files and directories to archive (directories with everything in them; symlinks are
        archived as links, not followed). A path that does not exist fails the task before anything is written.
    type: list
    elements: path
    required: true
  exclude:
    description: Shell patterns of paths (or base names) to leave out, such as C(*.log) or C(/srv/app/node_modules).
    type: list
    elements: str
    default: []
  label:
    description: The name of this series of backups (the file name's prefix; retention counts per label).
    type: str
    default: config
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
  allow_plaintext:
    description:
      - Send the backup to O(s3) without O(age_recipients). Off by default, because env files hold the stack's
        passwords and keys.
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for another backup into O(dest) to finish.
    type: int
    default: 0
seealso:
  - module: stackops.runbook.config_restore
  - module: stackops.runbook.volume_backup
"""

EXAMPLES = r"""
- name: Back up the compose project and the collection's ledgers, encrypted, offsite
  stackops.runbook.config_backup:
    paths:
      - /srv/myapp
      - /var/log/stackops-runbook
    exclude: ["*.log", /srv/myapp/node_modules]
    dest: /var/backups/stackops/config
    age_recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
    keep_days: 30
    s3:
      bucket: backups
      prefix: prod/config
"""

RETURN = r"""
path:
  description: The backup file.
  returned: always
  type: str
  sample: /var/backups/stackops/config/config_20261122T030000Z.tar.gz.age
manifest_path:
  description: The manifest beside the backup.
  returned: always
  type: str
  sample: /var/backups/stackops/config/config_20261122T030000Z.manifest.json
manifest:
  description: The manifest written beside the backup; C(entries) lists every archived path with its type, mode, owner, size and sha256.
  returned: success and not check mode
  type: dict
  sample: {"kind": "config", "members": 14, "entries": [{"path": "/srv/myapp/.env", "type": "file", "mode": "0600", "size": 812}]}
sha256:
  description: sha256 of the backup file as stored.
  returned: success and not check mode
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
size:
  description: Bytes written.
  returned: success and not check mode
  type: int
  sample: 20480
s3_uri:
  description: Where the offsite copy went.
  returned: when O(s3) is set and not check mode
  type: str
  sample: s3://backups/prod/config/config_20261122T030000Z.tar.gz.age
pruned:
  description: The backups retention removed (or would remove, in check mode), locally and in S3.
  returned: always
  type: list
  elements: dict
  sample: []
retained:
  description: The local backups that stay after retention, newest first, and what keeps each.
  returned: always
  type: list
  elements: dict
  sample: []
locked:
  description: The backups in S3 retention would remove but whose Object Lock has not expired.
  returned: always
  type: list
  elements: dict
  sample: []
anomalous:
  description: Whether the backup shrank by more than O(anomaly_threshold) next to the newest normal one.
  returned: success and not check mode
  type: bool
  sample: false
anomalies:
  description: What looks lost, one sentence each.
  returned: success and not check mode
  type: list
  elements: str
  sample: []
future_backups:
  description: Backups dated later than this host's clock; never counted as newer and never pruned.
  returned: always
  type: list
  elements: dict
  sample: []
removed_partials:
  description: Leftovers of earlier runs that died (C(*.partial)), removed under the lock.
  returned: always
  type: list
  elements: str
  sample: []
"""

import datetime
import os

from ansible_collections.stackops.runbook.plugins.module_utils import _backup
from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._config import ConfigWriter, plaintext_offsite_error
from ansible_collections.stackops.runbook.plugins.module_utils._compression import check_level, default_level
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._storage import LocalStorage
from ansible_collections.stackops.runbook.plugins.module_utils._tar import missing_path_error


def validate(module):
    p = module.params
    if not mf.is_safe_name(p["label"]):
        module.fail_json(msg="label=%r cannot be used: letters, digits, '_', '.' and '-' only, without '..'" % p["label"])
    relative = [path for path in p["paths"] if not os.path.isabs(path)]
    if relative or not p["paths"]:
        module.fail_json(msg="paths must be absolute paths of the host, at least one (got %s)" % (
            ", ".join(relative) or "none"))
    problem = (check_level(p["compression"], p["compression_level"]) or _backup.pipeline_options_error(p)
               or plaintext_offsite_error(p) or missing_path_error(p["paths"]))
    if problem:
        module.fail_json(msg=problem)
    require_libraries(module, zstandard=p["compression"] == "zstd", boto3=bool(p["s3"]))


def main():
    spec = _backup.pipeline_argument_spec()
    spec.update(paths=dict(type="list", elements="path", required=True),
                exclude=dict(type="list", elements="str", default=[]),
                label=dict(type="str", default="config"),
                compression=dict(type="str", default="gzip", choices=["gzip", "zstd", "none"]),
                compression_level=dict(type="int"), allow_plaintext=dict(type="bool", default=False))
    module = RunbookModule(argument_spec=spec, supports_check_mode=True)
    validate(module)
    p = module.params
    level = p["compression_level"] if p["compression_level"] is not None else default_level(p["compression"])
    writer = ConfigWriter(p["label"], p["paths"], p["exclude"], p["compression"], level, p["age_recipients"])
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        if module.check_mode:
            result = dict(_backup.plan(LocalStorage(p["dest"]), writer, p, now),
                          msg="check mode: would archive %s" % ", ".join(p["paths"]))
        else:
            result = _backup.run(writer, p, now)
    except RunbookError as exc:
        module.fail_from(exc, "config backup %s failed" % p["label"], kept=_backup.NOTHING_KEPT)
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
