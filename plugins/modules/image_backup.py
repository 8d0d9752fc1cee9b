#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_backup
short_description: Back up the docker images of the serving release, for a server that builds its own
version_added: 0.2.0
description:
  - Saves docker images (C(docker save), streamed from the engine without the docker CLI) as one compressed tar with a
    manifest, through the same pipeline as the other backups (partial file, check to the tar's end marker, manifest
    last, retention, offsite copy, encryption).
  - For the stacks that build on the server (C(docker compose up --build)) and push to no registry, the serving
    release's images exist nowhere else; M(stackops.runbook.image_restore) loads them on a new server.
  - With O(release_ledger), the images are those of the newest release that served healthy, as compose_release
    recorded them (by id; a tag that moved since is not followed).
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
    description: Finds the images and says what would be written and pruned.
  diff_mode:
    support: none
    description: A new backup has no meaningful diff.
options:
  images:
    description: Image references or ids to save, such as C(myapp/api:1.4.2). Mutually exclusive with O(release_ledger).
    type: list
    elements: str
  release_ledger:
    description: The release ledger of M(stackops.runbook.compose_release); the newest good release's images are saved.
    type: path
  services:
    description: With O(release_ledger), only these services' images (default every service of the release).
    type: list
    elements: str
  label:
    description: The name of this series of backups.
    type: str
    default: images
  dest:
    description: Local directory of the backups (created with mode 0700).
    type: path
    required: true
  compression:
    description: Compression of the tar (image layers are mostly compressed already).
    type: str
    choices: [gzip, zstd, none]
    default: zstd
  compression_level:
    description: Compression level; default 6 for gzip, 2 for zstd.
    type: int
  lock_timeout:
    description: Seconds to wait for another backup into O(dest) to finish.
    type: int
    default: 0
seealso:
  - module: stackops.runbook.image_restore
  - module: stackops.runbook.compose_release
"""

EXAMPLES = r"""
- name: Keep the serving release's images beside the backups
  stackops.runbook.image_backup:
    release_ledger: /srv/myapp/.stackops/releases.jsonl
    dest: /var/backups/stackops/images
    keep_last: 2
"""

RETURN = r"""
path:
  description: The backup file.
  returned: always
  type: str
  sample: /var/backups/stackops/images/images_20261122T030000Z.tar.zst
manifest:
  description: The manifest; C(images) lists each image's reference, id, service and tags, C(release) the release version.
  returned: success and not check mode
  type: dict
  sample: {"kind": "images", "release": "1.4.2", "images": [{"ref": "myapp/api:1.4.2", "id": "sha256:ab12", "service": "api"}]}
images:
  description: The images saved (or that would be).
  returned: always
  type: list
  elements: dict
  sample: [{"ref": "myapp/api:1.4.2", "id": "sha256:ab12", "service": "api"}]
pruned:
  description: The backups retention removed (or would remove, in check mode), locally and in S3.
  returned: always
  type: list
  elements: dict
  sample: []
s3_uri:
  description: Where the offsite copy went.
  returned: when O(s3) is set and not check mode
  type: str
  sample: s3://backups/prod/images/images_20261122T030000Z.tar.zst
"""

import datetime

from ansible_collections.stackops.runbook.plugins.module_utils import _backup
from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._compression import check_level, default_level
from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_argument_spec, docker_client
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._images import ImagesWriter, resolve, serving_images
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._storage import LocalStorage


def main():
    spec = _backup.pipeline_argument_spec()
    spec.update(docker_argument_spec())
    spec.update(images=dict(type="list", elements="str"), release_ledger=dict(type="path"),
                services=dict(type="list", elements="str"), label=dict(type="str", default="images"),
                compression=dict(type="str", default="zstd", choices=["gzip", "zstd", "none"]),
                compression_level=dict(type="int"))
    module = RunbookModule(argument_spec=spec, mutually_exclusive=[("images", "release_ledger")],
                           required_one_of=[("images", "release_ledger")], supports_check_mode=True)
    p = module.params
    problem = (None if mf.is_safe_name(p["label"]) else "label=%r: letters, digits, '_', '.' and '-' only" % p["label"])
    problem = problem or check_level(p["compression"], p["compression_level"]) or _backup.pipeline_options_error(p)
    if problem:
        module.fail_json(msg=problem)
    require_libraries(module, docker=True, zstandard=p["compression"] == "zstd", boto3=bool(p["s3"]))
    level = p["compression_level"] if p["compression_level"] is not None else default_level(p["compression"])
    try:
        version, wanted = (serving_images(p["release_ledger"], p["services"]) if p["release_ledger"]
                           else (None, [dict(ref=i) for i in p["images"]]))
        client = docker_client(p["docker_host"])
        images = resolve(client, wanted)
        writer = ImagesWriter(client, p["label"], images, p["compression"], level, p["age_recipients"], version)
        now = datetime.datetime.now(datetime.timezone.utc)
        if module.check_mode:
            result = dict(_backup.plan(LocalStorage(p["dest"]), writer, p, now),
                          msg="check mode: would save %s" % ", ".join(i["save"] for i in images))
        else:
            result = _backup.run(writer, p, now)
    except RunbookError as exc:
        module.fail_from(exc, "image backup %s failed" % p["label"], kept=_backup.NOTHING_KEPT)
    result["images"] = [dict(ref=i.get("ref"), id=i["id"], service=i.get("service")) for i in images]
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
