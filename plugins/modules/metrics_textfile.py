#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: metrics_textfile
short_description: Write metrics for Prometheus node_exporter's textfile collector
version_added: 0.1.0
description:
  - Writes metrics in the Prometheus text exposition format to a C(.prom) file that node_exporter's
    textfile collector (C(--collector.textfile.directory)) publishes, so Prometheus can alert on stale
    backups, failed drills and unhealthy stacks.
  - The file is replaced atomically (temporary file and rename), so node_exporter never reads half of it,
    and only when its content changes.
author:
  - stackops.runbook contributors (@stackops)
attributes:
  check_mode:
    support: full
    description: Says whether the file would change and writes nothing.
  diff_mode:
    support: full
    description: Shows the old and new file content.
options:
  path:
    description:
      - The file, ending in C(.prom), in node_exporter's textfile directory. The directory must exist.
    type: path
    required: true
  metrics:
    description: The samples to publish.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Metric name, such as C(stackops_backup_last_success_timestamp_seconds).
        type: str
        required: true
      value:
        description: The sample value; V(true)/V(false) become 1/0.
        type: raw
        required: true
      help:
        description: The HELP text.
        type: str
      type:
        description: The metric type.
        type: str
        choices: [gauge, counter, untyped]
        default: gauge
      labels:
        description: Label names and values.
        type: dict
        default: {}
  mode:
    description: File mode; node_exporter usually runs as another user, so it must be readable.
    type: raw
    default: '0644'
seealso:
  - module: stackops.runbook.audit_ledger
"""

EXAMPLES = r"""
- name: Publish the latest backup for node_exporter
  stackops.runbook.metrics_textfile:
    path: /var/lib/prometheus/node-exporter/stackops_backup.prom
    metrics:
      - name: stackops_backup_last_success_timestamp_seconds
        help: End time of the latest verified backup.
        labels: {database: app}
        value: 1795316441
      - name: stackops_backup_size_bytes
        labels: {database: app}
        value: 12894112
"""

RETURN = r"""
path:
  description: The metrics file.
  returned: always
  type: str
  sample: /var/lib/prometheus/node-exporter/stackops_backup.prom
content:
  description: The text written (or, in check mode, that would be written).
  returned: always
  type: str
  sample: "# HELP stackops_backup_size_bytes Size.\n# TYPE stackops_backup_size_bytes gauge\nstackops_backup_size_bytes 1.2e7\n"
"""

import os

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule
from ansible_collections.stackops.runbook.plugins.module_utils._reports import (
    exposition,
    file_mode,
    read_text,
    validate_metric,
    write_report,
)


def main():
    module = RunbookModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            metrics=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                value=dict(type="raw", required=True),
                help=dict(type="str"),
                type=dict(type="str", default="gauge", choices=["gauge", "counter", "untyped"]),
                labels=dict(type="dict", default={}),
            )),
            mode=dict(type="raw", default="0644"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["path"].endswith(".prom"):
        module.fail_json(msg="path=%s: node_exporter's textfile collector reads only files ending in .prom" % p["path"])
    if not os.path.isdir(os.path.dirname(p["path"]) or "."):
        module.fail_json(msg="path=%s: the directory does not exist; create node_exporter's textfile directory "
                             "or point path at it" % p["path"])
    for index, metric in enumerate(p["metrics"]):
        problem = validate_metric(index, metric)
        if problem:
            module.fail_json(msg=problem)
    content = exposition(p["metrics"])
    before = read_text(p["path"])
    result = dict(changed=before != content, path=p["path"], content=content)
    if module._diff:
        result["diff"] = dict(before=before, after=content, before_header=p["path"], after_header=p["path"])
    try:
        mode = file_mode(p["mode"])
        if result["changed"] and not module.check_mode:
            write_report(p["path"], content, mode)
    except RunbookError as exc:
        module.fail_from(exc)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
