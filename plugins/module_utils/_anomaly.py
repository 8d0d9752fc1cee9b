# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

The anomaly guard of the backup pipeline: a new backup compared with the newest normal verified backup of
the same series, from their manifests (tables gone, tables that lost rows, a dump that shrank). A backup
that looks like a wipe is kept and marked, and retention then deletes nothing of its series: the backups
from before the wipe are what a restore needs. "Normal" is a backup that was not anomalous, or whose
anomalies an operator acknowledged (``anomaly_acknowledge``), so a wipe stays flagged night after night
until the data is back or someone says the change is intended.
"""

from __future__ import annotations

import fnmatch

DEFAULT_THRESHOLD = 0.5


def anomaly_argument_spec():
    """The options of the stackops.runbook.anomaly doc fragment."""
    return dict(anomaly_threshold=dict(type="float", default=DEFAULT_THRESHOLD),
                on_anomaly=dict(type="str", default="warn", choices=["warn", "fail"]),
                anomaly_ignore_tables=dict(type="list", elements="str", default=[]),
                anomaly_acknowledge=dict(type="bool", default=False))


def anomaly_options_error(params):
    threshold = params["anomaly_threshold"]
    if not 0 < threshold <= 1:
        return ("anomaly_threshold=%s must be a fraction above 0 and at most 1 (0.5: flag a table or dump that lost "
                "more than half)" % threshold)
    return None


def is_normal(manifest):
    """Whether a manifest can be the baseline of the next comparison."""
    return bool(manifest.get("verified", True)) and (
        not manifest.get("anomalous") or bool(manifest.get("anomaly_acknowledged")))


def baseline(entries, current):
    """The newest normal backup among ``entries`` (oldest first) other than ``current``, or None."""
    for entry in reversed(entries):
        if entry.name != current and entry.manifest and is_normal(entry.manifest):
            return entry.manifest
    return None


def _ignored(table, patterns):
    bare = table.split(".", 1)[-1]
    return any(fnmatch.fnmatchcase(table, p) or fnmatch.fnmatchcase(bare, p) for p in patterns)


def _lost(before, after):
    return (before - after) / float(before) if before > 0 else 0.0


def find_anomalies(previous, facts, params):
    """What in ``facts`` (the new backup's manifest) looks like lost data next to ``previous``: a list of
    sentences, empty when it looks normal."""
    if not previous:
        return []
    threshold, ignore = params["anomaly_threshold"], params["anomaly_ignore_tables"] or []
    found = []
    before, after = previous.get("row_counts"), facts.get("row_counts")
    if isinstance(before, dict) and isinstance(after, dict):
        for table in sorted(before):
            if _ignored(table, ignore):
                continue
            if table not in after:
                found.append("table %s is gone (it had %d rows in %s)" % (table, before[table], previous["name"]))
            elif _lost(before[table], after[table]) > threshold:
                found.append("table %s lost %d%% of its rows (%d in %s, %d now)" % (
                    table, round(100 * _lost(before[table], after[table])), before[table], previous["name"],
                    after[table]))
    key = "uncompressed_size" if previous.get("uncompressed_size") and facts.get("uncompressed_size") else "size"
    if previous.get(key) and facts.get(key) is not None and _lost(previous[key], facts[key]) > threshold:
        found.append("the dump shrank by %d%% (%d bytes in %s, %d now)" % (
            round(100 * _lost(previous[key], facts[key])), previous[key], previous["name"], facts[key]))
    return found


def anomaly_facts(previous, facts, params):
    """The manifest's anomaly fields of a new backup."""
    anomalies = find_anomalies(previous, facts, params)
    marked = dict(anomalous=bool(anomalies), anomalies=anomalies,
                  compared_with=previous["name"] if previous else None)
    if anomalies and params.get("anomaly_acknowledge"):
        marked["anomaly_acknowledged"] = True
    return marked
