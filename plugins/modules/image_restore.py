#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_restore
short_description: Load the docker images an image backup holds (docker load), on a new server
version_added: 0.2.0
description:
  - Finds a backup M(stackops.runbook.image_backup) made (C(latest) of a label, a name, a file path or an S3 key),
    checks it against its manifest (decrypting it with the age identity when it is encrypted), and streams it to the
    docker engine's C(docker load), so a stack built on a server that is gone can start at the same release.
  - Images whose ids are on the host already are not loaded again (a re-run changes nothing); afterwards every image of
    the manifest must be on the host, with its tags.
requirements:
  - The Python docker SDK (C(docker))
  - python zstandard (C(zstandard)) for zstd-compressed backups
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.storage
  - stackops.runbook.encryption.identity
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_docker_storage
attributes:
  check_mode:
    support: full
    description: Checks the backup and says which images would be loaded.
  diff_mode:
    support: none
    description: Images are not diffed.
options:
  backup:
    description: C(latest) (of O(label)), a backup name, the absolute path of a backup file, or an S3 key under O(s3.prefix).
    type: str
    default: latest
  path:
    description: Directory of the backups (the O(stackops.runbook.image_backup#module:dest) of image_backup).
    type: path
  label:
    description: The series whose C(latest) is loaded.
    type: str
    default: images
seealso:
  - module: stackops.runbook.image_backup
"""

EXAMPLES = r"""
- name: Load the serving release's images on the new server
  stackops.runbook.image_restore:
    s3:
      bucket: backups
      prefix: prod/images
    age_identity: "{{ vault_backup_age_identity }}"
"""

RETURN = r"""
backup:
  description: The backup loaded.
  returned: always
  type: str
  sample: images_20261122T030000Z
loaded:
  description: The ids of the images that were not on the host and were (or would be) loaded.
  returned: success
  type: list
  elements: str
  sample: ["sha256:ab12"]
release:
  description: The release the images belong to (from the manifest), when image_backup read it from a release ledger.
  returned: success
  type: str
  sample: 1.4.2
"""

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._age import Identity, identity_options_error
from ansible_collections.stackops.runbook.plugins.module_utils._backups import (
    RestoreError,
    backup_source_argument_spec,
    checked_copy,
    find_backup,
    open_storage,
    private_workdir,
)
from ansible_collections.stackops.runbook.plugins.module_utils._compression import decompressed_chunks
from ansible_collections.stackops.runbook.plugins.module_utils._docker import (
    docker_argument_spec,
    docker_client,
    docker_errors,
    load_images,
    present_image_ids,
)
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries


def missing_ids(client, manifest):
    with docker_errors("cannot list the images"):
        present = present_image_ids(client)
    return sorted({i["id"] for i in manifest.get("images") or []} - present)


def restore(module, workdir):
    p = module.params
    storage = open_storage(p)
    manifest = find_backup(storage, p["backup"], p["label"], kind="images")
    local, manifest = checked_copy(storage, manifest, workdir, identity=Identity.from_params(p))
    client = docker_client(p["docker_host"])
    missing = missing_ids(client, manifest)
    result = dict(backup=manifest["name"], loaded=missing, release=manifest.get("release"), changed=bool(missing))
    if missing and not module.check_mode:
        load_images(client, decompressed_chunks(manifest["compression"], local.open_chunks(manifest["file"])))
        still = missing_ids(client, manifest)
        if still:
            raise RestoreError("the docker engine loaded %s but %s are still missing"
                               % (manifest["name"], ", ".join(still)), result)
    return result


def main():
    spec = backup_source_argument_spec()
    spec.update(docker_argument_spec())
    spec.update(label=dict(type="str", default="images"))
    module = RunbookModule(argument_spec=spec, mutually_exclusive=[("path", "s3")], supports_check_mode=True)
    p = module.params
    problem = identity_options_error(p)
    if not mf.is_safe_name(p["label"]):
        problem = "label=%r: letters, digits, '_', '.' and '-' only" % p["label"]
    if problem:
        module.fail_json(msg=problem)
    require_libraries(module, docker=True, zstandard=True, boto3=bool(p["s3"]))
    try:
        with private_workdir("stackops-image-restore-") as workdir:
            result = restore(module, workdir)
    except RunbookError as exc:
        module.fail_from(exc, "image restore failed")
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
