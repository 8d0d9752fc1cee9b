# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The anomaly guard of every module that makes backups.
    DOCUMENTATION = r"""
options:
  anomaly_threshold:
    description:
      - Each new backup is compared with the newest normal verified backup of the same series, from their
        manifests. It is anomalous when a table is gone, when a table lost more than this fraction of its rows, or
        when the dump shrank by more than this fraction.
      - An anomalous backup is kept and marked (C(anomalous), C(anomalies) in the result and the manifest), and
        retention deletes nothing of its series, locally or in O(s3), so the backups from before a wipe stay. It stays
        so night after night (each backup is compared with the last normal one) until a normal backup follows or
        O(anomaly_acknowledge) is set.
    type: float
    default: 0.5
  on_anomaly:
    description:
      - V(warn) reports anomalies as a warning; V(fail) fails the task after the backup is kept (and copied
        offsite), so a schedule's alerting sees it.
    type: str
    choices: [warn, fail]
    default: warn
  anomaly_ignore_tables:
    description:
      - Tables that shrink by design (expired sessions, tokens, queues); shell patterns matched against
        C(schema.table) and the bare table name, such as C(public.sessions) or C(*_tokens).
    type: list
    elements: str
    default: []
  anomaly_acknowledge:
    description:
      - Say that the changes this backup finds are intended (a purge, a table dropped on purpose). The backup is
        still marked, with C(anomaly_acknowledged), retention applies again, and the next backups are compared
        with this one.
    type: bool
    default: false
"""
