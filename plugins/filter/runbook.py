# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the roles use to turn module results into one-line summaries and node_exporter metrics.
Documented in the .yml file of each filter beside this one."""

from __future__ import annotations

import datetime
import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible_collections.stackops.runbook.plugins.module_utils._module import parse_duration
from ansible_collections.stackops.runbook.plugins.module_utils._units import size_text

VERDICT_VALUES = {"healthy": 0, "degraded": 1, "down": 2}


def _age(seconds):
    seconds = int(seconds or 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return "%d%s" % (seconds // size, unit)
    return "%ds" % seconds


def backup_line(entry):
    """``app 8.5 MiB, 2m old (app_20261122T030000Z)`` from a backup_info entry."""
    if not isinstance(entry, dict) or "name" not in entry:
        raise AnsibleFilterError("backup_line expects a backup from backup_info (latest or backups), got %r" % (entry,))
    label = entry.get("database") or entry["name"].rsplit("_", 1)[0]
    return "%s %s, %s old (%s)%s" % (label, size_text(entry.get("size")), _age(entry.get("age_seconds")), entry["name"],
                                     " ANOMALOUS: " + "; ".join(entry.get("anomalies") or []) if entry.get("anomalous")
                                     else "")


def seconds(value):
    """Seconds in a duration such as ``90``, ``"90m"``, ``"26h"`` or ``"7d"`` (what max_age and the roles' intervals take)."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise AnsibleFilterError("seconds: %s" % exc)


def failure_message(failed_result):
    """What failed, from ``ansible_failed_result``: the first failed item's message when a loop failed (the
    loop's own message only says "One or more items failed"), else the task's."""
    failed_result = failed_result or {}
    items = [_command_failure(r) for r in failed_result.get("results") or [] if isinstance(r, dict) and r.get("failed")]
    return (items + [_command_failure(failed_result)])[0]


def _command_failure(result):
    # a failed command says only "non-zero return code": its last line of stderr says what went wrong
    message = result.get("msg") or "see the task output"
    lines = [line for line in (result.get("stderr_lines") or str(result.get("stderr") or "").splitlines()) if line.strip()]
    if "rc" in result and lines:
        # the last line naming an error (a traceback ends with SQL and a caret after it), else the last line
        named = [line for line in lines if re.search(r"error|fatal|exception", line, re.I)]
        return "%s (rc=%s): %s" % (message, result["rc"], (named or lines)[-1].strip())
    return message


def _metric(name, value, help_text, **labels):
    return dict(name=name, value=value, help=help_text, type="gauge", labels=labels)


def backup_metrics(entries, rpo=None):
    """Metrics of the latest backup of each database: when it finished, its size, how long it took, whether it was
    verified or looks anomalous, and - with ``rpo`` (a duration) - the RPO it is held to."""
    rpo_seconds = seconds(rpo) if rpo not in (None, "") else None
    metrics = []
    for entry in entries or []:
        # a database (or globals) backup is labelled database="app", a docker volume's volume="uploads"
        labels = {"volume" if entry.get("kind") == "volume" else "database":
                  entry.get("database") or entry["name"].rsplit("_", 1)[0]}
        metrics += [
            _metric("stackops_backup_last_success_timestamp_seconds", entry.get("timestamp") or 0,
                    "Time of the latest backup (Unix seconds); alert when it is older than the RPO.", **labels),
            _metric("stackops_backup_size_bytes", entry.get("size") or 0, "Size of the latest backup.", **labels),
            _metric("stackops_backup_duration_seconds", entry.get("duration_seconds") or 0,
                    "How long the latest backup took.", **labels),
            _metric("stackops_backup_verified", bool(entry.get("verified")),
                    "1 when the latest backup was verified after it was written.", **labels),
            _metric("stackops_backup_anomalous", bool(entry.get("anomalous")),
                    "1 when the latest backup looks like lost data (retention is held until it is normal or "
                    "acknowledged).", **labels),
        ]
        if rpo_seconds is not None:
            metrics.append(_metric("stackops_backup_rpo_seconds", rpo_seconds,
                                   "The recovery point objective: the latest backup must be younger.", **labels))
    return metrics


def drill_metrics(drill):
    """Metrics of a drill log (the JSON restore_drill writes): passed, when, the restore time against the RTO."""
    if not isinstance(drill, dict) or "passed" not in drill or "started_at" not in drill:
        raise AnsibleFilterError("drill_metrics expects a drill log (the JSON file restore_drill writes), got %r"
                                 % (drill,))
    started = datetime.datetime.fromisoformat(str(drill["started_at"]).replace("Z", "+00:00"))
    database = drill.get("database") or "unknown"
    return [
        _metric("stackops_drill_passed", bool(drill["passed"]), "1 when the latest restore drill passed.", database=database),
        _metric("stackops_drill_last_run_timestamp_seconds", int(started.timestamp()),
                "Time of the latest restore drill (Unix seconds).", database=database),
        _metric("stackops_drill_restore_seconds", drill.get("restore_seconds") or 0,
                "Measured restore time in the latest drill (the RTO actually achieved).", database=database),
        _metric("stackops_drill_rto_seconds", drill.get("rto_seconds") or 0,
                "The recovery time objective the drill was graded against (0 when none).", database=database),
    ]


def health_metrics(probe):
    """Metrics of a health_probe result: the verdict (0 healthy, 1 degraded, 2 down) and each check."""
    if not isinstance(probe, dict) or "status" not in probe:
        raise AnsibleFilterError("health_metrics expects the result of health_probe, got %r" % (probe,))
    metrics = [_metric("stackops_health_verdict", VERDICT_VALUES.get(probe["status"], 2),
                       "Overall verdict of the stack: 0 healthy, 1 degraded, 2 down.")]
    for check in probe.get("checks") or []:
        metrics.append(_metric("stackops_health_check_up", check.get("status") == "pass",
                               "1 when the check passed.", check=check.get("name", "?"),
                               severity=check.get("severity", "critical")))
    return metrics


def firewall_blocks(addresses, never=None, what="incident_block_ips"):
    """Which of ``addresses`` (IP addresses or networks) may be blocked: {"block": [{source, ip_version}],
    "kept": [{source, why}]}. An entry that overlaps one of ``never`` (loopback, the address the controller
    connects from) is kept, saying why: blocking it would cut the operator off. A malformed entry fails naming
    ``what``."""
    def network(text, name):
        try:
            return ipaddress.ip_network(str(text).strip(), strict=False)
        except ValueError:
            raise AnsibleFilterError("%s: %r is not an IP address or network (such as 203.0.113.7 or 203.0.113.0/24)"
                                     % (name, text))
    guarded = [network(n, "incident_never_block") for n in never or [] if str(n).strip()]
    result, seen = dict(block=[], kept=[]), set()
    for text in addresses or []:
        net = network(text, what)
        if net in seen:
            continue
        seen.add(net)
        source = str(net.network_address) if net.num_addresses == 1 else str(net)
        overlap = [str(g) for g in guarded if g.version == net.version and net.overlaps(g)]
        if overlap:
            result["kept"].append(dict(source=source, why="overlaps %s (never blocked: loopback or the address this "
                                                          "run connects from)" % ", ".join(overlap)))
        else:
            result["block"].append(dict(source=source, ip_version="ipv%d" % net.version))
    return result


class FilterModule:
    def filters(self):
        return dict(backup_line=backup_line, backup_metrics=backup_metrics, drill_metrics=drill_metrics,
                    health_metrics=health_metrics, seconds=seconds,
                    failure_message=failure_message, firewall_blocks=firewall_blocks)
