#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: config_restore
short_description: Put the files of a config backup back where they were
version_added: 0.2.0
description:
  - Restores a backup M(stackops.runbook.config_backup) made (C(latest) of a label, a name, a file path or an S3
    key), the first step of bringing a stack back on a fresh server.
  - The backup is checked against its manifest first (decrypted with the age identity when it is encrypted, size,
    sha256, full decompression); then the manifest's entries are compared with what is on the host. Files that are
    missing are created; files that are already identical are left alone (a re-run changes nothing); a file that
    differs is only replaced with O(overwrite=true) - otherwise nothing at all is written and the task names them.
  - Each file is written to a temporary file beside it, synced and renamed over the old one, with its mode (and its
    owner when run as root), so a failure leaves every file either as it was or as in the backup.
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.storage
  - stackops.runbook.encryption.identity
  - stackops.runbook._attributes.actiongroup_storage
attributes:
  check_mode:
    support: full
    description: Checks the backup and says which files would be created or replaced.
  diff_mode:
    support: partial
    description: Lists the paths that would be created and replaced (not their content, which holds secrets).
options:
  backup:
    description: C(latest) (of O(label)), a backup name, the absolute path of a backup file, or an S3 key under O(s3.prefix).
    type: str
    default: latest
  path:
    description: Directory of the backups (the O(stackops.runbook.config_backup#module:dest) of config_backup).
    type: path
  label:
    description: The series whose C(latest) is restored.
    type: str
    default: config
  root:
    description:
      - Where the archived absolute paths go; C(/) puts every file back where it was, another directory restores
        under it (C(/srv/myapp/.env) to C(ROOT/srv/myapp/.env)) to look before replacing.
    type: path
    default: /
  overwrite:
    description: Replace files that differ from the backup. Without it, any such file stops the restore before anything is written.
    type: bool
    default: false
seealso:
  - module: stackops.runbook.config_backup
"""

EXAMPLES = r"""
- name: Bring back the compose project and the ledgers on a new server, from S3
  stackops.runbook.config_restore:
    s3:
      bucket: backups
      prefix: prod/config
    age_identity: "{{ vault_backup_age_identity }}"
"""

RETURN = r"""
backup:
  description: The backup restored.
  returned: always
  type: str
  sample: config_20261122T030000Z
created:
  description: Paths that did not exist and were (or would be) written.
  returned: success
  type: list
  elements: str
  sample: ["/srv/myapp/.env"]
replaced:
  description: Paths that differed and were (or would be) replaced.
  returned: success
  type: list
  elements: str
  sample: []
unchanged:
  description: How many entries were already as in the backup.
  returned: success
  type: int
  sample: 12
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
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._tar import extract_files, plan_extraction


def restore(module, workdir):
    p = module.params
    storage = open_storage(p)
    manifest = find_backup(storage, p["backup"], p["label"], kind="config")
    local, manifest = checked_copy(storage, manifest, workdir, identity=Identity.from_params(p))
    try:
        plan = plan_extraction(manifest.get("entries") or [], p["root"])
    except ValueError as exc:
        raise RestoreError("%s cannot be restored safely: %s (nothing was changed)" % (manifest["name"], exc))
    result = dict(backup=manifest["name"], created=sorted(k for k, v in plan.items() if v == "create"),
                  replaced=sorted(k for k, v in plan.items() if v == "replace"),
                  unchanged=sum(1 for v in plan.values() if v == "same"))
    if result["replaced"] and not p["overwrite"]:
        raise RestoreError("%d file(s) on the host differ from %s: %s. Set overwrite: true to replace them, or restore "
                           "under another root to compare (nothing was changed)" % (
                               len(result["replaced"]), manifest["name"], ", ".join(result["replaced"][:10])), result)
    result["changed"] = bool(result["created"] or result["replaced"])
    if module._diff:
        result["diff"] = dict(before="".join("%s\n" % k for k in result["replaced"]),
                              after="".join("%s\n" % k for k in result["created"] + result["replaced"]))
    if result["changed"] and not module.check_mode:
        try:
            extract_files(decompressed_chunks(manifest["compression"], local.open_chunks(manifest["file"])),
                          p["root"], plan)
        except OSError as exc:
            # every file is either as it was or as in the backup: a re-run skips those already restored
            raise RestoreError("writing %s failed (%s); files written before it are restored, the others untouched. "
                               "Fix the cause and run again" % (getattr(exc, "filename", None) or p["root"], exc),
                               result)
    return result


def main():
    spec = backup_source_argument_spec()
    spec.update(label=dict(type="str", default="config"), root=dict(type="path", default="/"),
                overwrite=dict(type="bool", default=False))
    module = RunbookModule(argument_spec=spec, mutually_exclusive=[("path", "s3")], supports_check_mode=True)
    p = module.params
    if not mf.is_safe_name(p["label"]):
        module.fail_json(msg="label=%r is not a name config_backup uses: letters, digits, '_', '.' and '-' only"
                             % p["label"])
    problem = identity_options_error(p)
    if problem:
        module.fail_json(msg=problem)
    require_libraries(module, zstandard=True, boto3=bool(p["s3"]))
    try:
        with private_workdir("stackops-config-restore-") as workdir:
            result = restore(module, workdir)
    except RunbookError as exc:
        module.fail_from(exc, "config restore failed")
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
