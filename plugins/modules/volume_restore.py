#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_restore
short_description: Restore a docker named volume from a volume_backup archive
version_added: 0.1.0
description:
  - Puts a volume back as it was in a backup made by M(stackops.runbook.volume_backup) - the runbooks'
    C(docker run --rm -v uploads:/data alpine sh -c "rm -rf /data/* && tar xzf - -C /") done safely.
  - Checks the backup's sha256 before anything is touched; a damaged backup changes nothing.
  - Refuses while a running container uses the volume (stop the app first; the restore role does), and
    replaces an existing volume's content only with O(confirm) set to the volume's name.
  - The volume is emptied by a short-lived helper container (its image needs C(sh) and C(find)), the archive
    is streamed in through the docker engine, and the restored volume is read back and its entries counted
    against the manifest.
requirements:
  - The Python docker SDK (C(docker))
  - python zstandard (C(zstandard)) for zstd-compressed archives
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
    description: Finds and verifies the backup and says what would be replaced.
  diff_mode:
    support: none
    description: Volume contents are not diffed.
options:
  backup:
    description:
      - C(latest) (of O(from_volume)), a backup name such as C(myapp_uploads_20261122T030000Z), the absolute path of a
        backup file, or an S3 key under O(s3.prefix).
    type: str
    default: latest
  path:
    description: Directory of the backups (the O(stackops.runbook.volume_backup#module:dest) of volume_backup).
    type: path
  volume:
    description: The docker named volume to restore into; it is created when missing.
    type: str
    required: true
  from_volume:
    description: The volume whose backups are read (for O(backup=latest)); default O(volume).
    type: str
  confirm:
    description: Must equal O(volume) to replace the content of an existing volume.
    type: str
  helper_image:
    description:
      - Image of the helper containers; it needs C(sh) and C(find). Default is the image of a container that
        uses the volume, then the image recorded in the backup's manifest.
    type: str
seealso:
  - module: stackops.runbook.volume_backup
"""

EXAMPLES = r"""
- name: Put the uploads volume back from last night's backup
  stackops.runbook.volume_restore:
    volume: myapp_uploads
    path: /var/backups/stackops/volumes
    confirm: myapp_uploads
"""

RETURN = r"""
backup:
  description: The backup restored.
  returned: always
  type: str
  sample: myapp_uploads_20261122T030000Z
restored:
  description: Whether the volume was restored.
  returned: always
  type: bool
  sample: true
members:
  description: Entries in the restored volume, counted by reading it back (equal to the manifest's).
  returned: when restored
  type: int
  sample: 1204
"""

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._backups import (
    RestoreError,
    backup_source_argument_spec,
    checked_copy,
    find_backup,
    open_storage,
    private_workdir,
)
from ansible_collections.stackops.runbook.plugins.module_utils._age import Identity, identity_options_error
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._tar import TarReader
from ansible_collections.stackops.runbook.plugins.module_utils._volumes import (
    archive_chunks,
    empty_volume,
    helper,
    image_of_a_user,
    put_archive,
    volume_exists,
)
from ansible_collections.stackops.runbook.plugins.module_utils._compression import decompressed_chunks
from ansible_collections.stackops.runbook.plugins.module_utils._docker import (
    docker_argument_spec,
    docker_client,
    live_containers,
)


def count_members(chunks):
    tar = TarReader()
    for chunk in chunks:
        tar.feed(chunk)
    return tar.members


def main():
    spec = backup_source_argument_spec()
    spec.update(
        volume=dict(type="str", required=True),
        from_volume=dict(type="str"),
        confirm=dict(type="str"),
        helper_image=dict(type="str"),
    )
    spec.update(docker_argument_spec())
    module = RunbookModule(argument_spec=spec, mutually_exclusive=[("path", "s3")], supports_check_mode=True)
    p = module.params
    for key in ("volume", "from_volume"):
        if p[key] is not None and not mf.is_safe_name(p[key]):
            module.fail_json(msg="%s=%r is not a docker volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)" % (key, p[key]))
    problem = identity_options_error(p)
    if problem:
        module.fail_json(msg=problem)
    require_libraries(module, docker=True, zstandard=True, boto3=bool(p["s3"]))
    result = dict(changed=False, restored=False, backup=None)
    try:
        with private_workdir("stackops-volume-restore-") as workdir:
            storage = open_storage(p)
            manifest = find_backup(storage, p["backup"], p["from_volume"] or p["volume"], kind="volume")
            result["backup"] = manifest["name"]
            # sha256 and full decompression (decrypted first when encrypted), before anything is touched
            local, manifest = checked_copy(storage, manifest, workdir, identity=Identity.from_params(p))
            client = docker_client(p["docker_host"])
            exists = volume_exists(client, p["volume"])
            running = [c.name for c in live_containers(client, {"volume": p["volume"], "status": "running"})]
            if running and module.check_mode:
                # the restore role stops the services before this step, which check mode does not do
                module.warn("the volume %s is in use by running containers (%s): a real run refuses until they are stopped"
                            % (p["volume"], ", ".join(running)))
            elif running:
                raise RestoreError("the volume %s is in use by running containers (%s): stop them first, then restore "
                                   "(nothing was changed)" % (p["volume"], ", ".join(running)))
            if exists and p["confirm"] != p["volume"]:
                raise RestoreError("the volume %s exists; restoring %s replaces its content. Set confirm: %s to say so "
                                   "(nothing was changed)" % (p["volume"], manifest["name"], p["volume"]))
            image = p["helper_image"] or image_of_a_user(client, p["volume"]) or manifest.get("helper_image")
            if not image:
                raise RestoreError("no image to run the helper containers with: set helper_image to an image on the host "
                                   "that has sh and find (nothing was changed)")
            if module.check_mode:
                module.exit_json(changed=True, restored=False, backup=manifest["name"],
                                 msg="check mode: would replace the content of %s with %s" % (p["volume"], manifest["name"]))
            if not exists:
                client.volumes.create(p["volume"])
            with helper(client, p["volume"], image, read_only=False,
                        command=["sh", "-c", "find /volume -mindepth 1 -delete"]) as cleaner:
                empty_volume(cleaner)
            with helper(client, p["volume"], image, read_only=False) as writer:
                put_archive(writer, decompressed_chunks(manifest["compression"], local.open_chunks(manifest["file"])))
            with helper(client, p["volume"], image) as reader:
                members = count_members(archive_chunks(reader))
            result.update(changed=True, restored=True, members=members)
            if members != manifest.get("members"):
                raise RestoreError("the restored volume %s holds %d entries, the backup %d: look at the volume before "
                                   "the app uses it" % (p["volume"], members, manifest.get("members")))
    except RunbookError as exc:
        module.fail_from(exc, "restore of the volume %s failed" % p["volume"], **result)
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
