#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: audit_ledger
short_description: Append one operation to the audit ledger on the host, with its secrets masked
version_added: 0.1.0
description:
  - Appends one JSON line per operation (backup, restore, drill, health check...) to a ledger file on the
    managed host - when, who ran it and from where, what, its inputs, its result and how long it took - so
    the host keeps its own record of what was done to it, whichever controller or scheduler did it.
  - Values of keys that name secrets (password, secret, token, key, credential, webhook...) and every value
    listed in O(secrets) are masked before anything is written or returned.
  - The line is written in one append, so concurrent runs never interleave.
author:
  - stackops.runbook contributors (@stackops)
attributes:
  check_mode:
    support: full
    description: Returns the entry it would write and writes nothing.
  diff_mode:
    support: none
    description: An append has no meaningful diff; the entry is returned.
options:
  path:
    description: The ledger file. Its directory is created (mode 0750) when missing; the file is mode 0640.
    type: path
    default: /var/log/stackops-runbook/ledger.jsonl
  operation:
    description: What was done, such as C(backup), C(restore), C(restore_drill), C(health).
    type: str
    required: true
  result:
    description: How it ended.
    type: str
    choices: [succeeded, warning, failed, skipped]
    required: true
  summary:
    description: One human line, such as C(app 12.3 MiB, offsite, 2 pruned).
    type: str
    default: ''
  inputs:
    description: The operation's inputs (role variables); secrets are masked.
    type: dict
    default: {}
  details:
    description: Results worth keeping (backup names, verdicts, sizes); secrets are masked.
    type: dict
    default: {}
  started:
    description: When the operation started (ISO 8601); the duration is measured from it. Default is now.
    type: str
  actor:
    description: Who ran it (the AWX or Semaphore user, or the controller's login name).
    type: str
    default: unknown
  controller:
    description: From where it was run (the controller's host name, the AWX job).
    type: str
    default: unknown
  secrets:
    description: Values that must never reach the ledger, wherever they appear.
    type: list
    elements: str
    default: []
notes:
  - Recording an operation does not change the managed system, so the roles mark this task as never changed
    (C(changed_when=false)) and idempotence checks look at the operation itself.
seealso:
  - module: stackops.runbook.metrics_textfile
  - module: stackops.runbook.notify_webhook
"""

EXAMPLES = r"""
- name: Record the backup in the host's ledger
  stackops.runbook.audit_ledger:
    operation: backup
    result: succeeded
    summary: "app 12.3 MiB, offsite"
    started: "{{ backup_started }}"
    actor: "{{ awx_user_name | default(lookup('ansible.builtin.env', 'USER')) }}"
    inputs:
      databases: [app]
      s3: "{{ backup_s3 }}"
    secrets:
      - "{{ backup_login_password }}"
"""

RETURN = r"""
entry:
  description: The line written (or, in check mode, that would be written), secrets masked.
  returned: always
  type: dict
  sample:
    time: "2026-11-22T03:00:41+00:00"
    started: "2026-11-22T03:00:00+00:00"
    duration_seconds: 41.2
    operation: backup
    result: succeeded
    host: db1
    actor: ops
    controller: awx job 42
    summary: app 12.3 MiB, offsite
    inputs: {"s3": {"bucket": "backups", "secret_key": "********"}}
    details: {}
path:
  description: The ledger file.
  returned: always
  type: str
  sample: /var/log/stackops-runbook/ledger.jsonl
"""

import datetime
import socket

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule
from ansible_collections.stackops.runbook.plugins.module_utils._reports import append_entry, mask


def main():
    module = RunbookModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/log/stackops-runbook/ledger.jsonl"),
            operation=dict(type="str", required=True),
            result=dict(type="str", required=True, choices=["succeeded", "warning", "failed", "skipped"]),
            summary=dict(type="str", default=""),
            inputs=dict(type="dict", default={}),
            details=dict(type="dict", default={}),
            started=dict(type="str"),
            actor=dict(type="str", default="unknown"),
            controller=dict(type="str", default="unknown"),
            secrets=dict(type="list", elements="str", default=[], no_log=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    now = datetime.datetime.now(datetime.timezone.utc)
    started = module.time("started", "; pass now() in ISO form, such as \"{{ now(utc=true).isoformat() }}\"") or now
    entry = None
    try:
        entry = mask(dict(
            time=now.isoformat(timespec="seconds"),
            started=started.isoformat(timespec="seconds"),
            duration_seconds=round(max(0.0, (now - started).total_seconds()), 1),
            operation=p["operation"], result=p["result"], host=socket.gethostname(),
            actor=p["actor"], controller=p["controller"], summary=p["summary"],
            inputs=p["inputs"], details=p["details"],
        ), p["secrets"])
        if not module.check_mode:
            append_entry(p["path"], entry)
    except RunbookError as exc:
        module.fail_from(exc, **({"entry": entry} if entry else {}))
    module.exit_json(changed=not module.check_mode, entry=entry, path=p["path"])


if __name__ == "__main__":
    main()
