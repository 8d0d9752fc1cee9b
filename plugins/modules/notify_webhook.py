#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: notify_webhook
short_description: Tell a chat channel that an operation started, succeeded or failed
version_added: 0.1.0
description:
  - Posts a Slack incoming-webhook message (also accepted by Mattermost, Rocket.Chat and Discord's
    C(/slack) endpoint) with a one-line summary and the details as attachment fields.
  - A notification is best effort - by default a webhook that cannot be reached is reported as a warning,
    never as a failure of the backup or drill it was about.
  - The URL carries the webhook's token and is never logged or returned.
author:
  - stackops.runbook contributors (@stackops)
attributes:
  check_mode:
    support: full
    description: Builds the message and sends nothing.
  diff_mode:
    support: none
    description: Nothing on the host changes.
options:
  url:
    description: The incoming webhook URL. It is a secret.
    type: str
    required: true
  operation:
    description: What ran, such as C(backup).
    type: str
    required: true
  event:
    description: What happened.
    type: str
    choices: [started, succeeded, warning, failed, skipped]
    required: true
  host:
    description: The host it happened on.
    type: str
    required: true
  summary:
    description: The one-line summary (backup size and age, drill verdict, health verdict...).
    type: str
    default: ''
  details:
    description: Key/value details shown as fields; secrets are masked.
    type: dict
    default: {}
  channel:
    description: Channel override, where the webhook allows it.
    type: str
  username:
    description: Sender name override, where the webhook allows it.
    type: str
  timeout:
    description: Seconds to wait for the webhook.
    type: float
    default: 10
  validate_certs:
    description: Verify the webhook's TLS certificate.
    type: bool
    default: true
  fail_on_error:
    description: Fail the task when the webhook cannot be reached or refuses the message, instead of warning.
    type: bool
    default: false
seealso:
  - module: stackops.runbook.audit_ledger
"""

EXAMPLES = r"""
- name: Tell the ops channel the backup failed
  stackops.runbook.notify_webhook:
    url: "{{ vault_slack_webhook_url }}"
    operation: backup
    event: failed
    host: "{{ inventory_hostname }}"
    summary: "pg_dump exited 1: connection refused"
  delegate_to: localhost
"""

RETURN = r"""
sent:
  description: Whether the webhook accepted the message.
  returned: always
  type: bool
  sample: true
status:
  description: The webhook's HTTP status (-1 when it could not be reached; absent in check mode).
  returned: when sent or tried
  type: int
  sample: 200
payload:
  description: The message, as sent (or, in check mode, as it would be sent).
  returned: always
  type: dict
  sample: {"text": ":white_check_mark: stackops.runbook backup succeeded on db1: app 12.3 MiB"}
"""

import json

from ansible.module_utils.urls import fetch_url
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule
from ansible_collections.stackops.runbook.plugins.module_utils._reports import mask, webhook_payload


def main():
    module = RunbookModule(
        argument_spec=dict(
            url=dict(type="str", required=True, no_log=True),
            operation=dict(type="str", required=True),
            event=dict(type="str", required=True, choices=["started", "succeeded", "warning", "failed", "skipped"]),
            host=dict(type="str", required=True),
            summary=dict(type="str", default=""),
            details=dict(type="dict", default={}),
            channel=dict(type="str"),
            username=dict(type="str"),
            timeout=dict(type="float", default=10),
            validate_certs=dict(type="bool", default=True),
            fail_on_error=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["url"].startswith(("https://", "http://")):
        module.fail_json(msg="url must be an http(s) incoming-webhook URL")
    payload = webhook_payload(p["operation"], p["event"], p["host"], p["summary"], mask(p["details"]),
                              p["channel"], p["username"])
    if module.check_mode:
        module.exit_json(changed=False, sent=False, payload=payload)
    response, info = fetch_url(module, p["url"], data=json.dumps(payload), method="POST", timeout=p["timeout"],
                               headers={"Content-Type": "application/json"})
    status = info.get("status", -1)
    if response is not None:
        response.read()
    if 200 <= status < 300:
        module.exit_json(changed=False, sent=True, status=status, payload=payload)
    # info["msg"] can quote the URL; say what happened without it.
    problem = "the webhook answered HTTP %s" % status if status > 0 else "the webhook could not be reached"
    if p["fail_on_error"]:
        module.fail_json(msg="%s; check the URL and the network, or set fail_on_error: false" % problem,
                         sent=False, status=status, payload=payload)
    module.warn("%s; the %s notification was not delivered" % (problem, p["event"]))
    module.exit_json(changed=False, sent=False, status=status, payload=payload)


if __name__ == "__main__":
    main()
