# -*- coding: utf-8 -*-
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disaster recovery's plan: which backups of the offsite copy bring a lost server back (the newest verified,
normal backup of every series: config, images, globals, each database, each volume), what they weigh, how long the
drill history says the databases take, how old the data is, and whether the host about to receive them already
holds something that recovery would overwrite."""

from __future__ import annotations

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._reports import read_lines
from ansible_collections.stackops.runbook.plugins.module_utils._storage import in_future
from ansible_collections.stackops.runbook.plugins.module_utils._units import age_text, size_text

# where the backup role sends each kind, under the prefix of the databases (backup_volume_s3, backup_config_s3,
# backup_images_s3)
SUBPREFIXES = dict(volumes="volumes", config="config", images="images")


def s3_for(s3, kind):
    """The s3 options of ``kind``'s backups: the databases' prefix itself, or its sub-prefix."""
    if kind in ("databases", "globals"):
        return s3
    prefix = ("%s/%s" % (s3.get("prefix") or "", SUBPREFIXES[kind])).lstrip("/")
    return dict(s3, prefix=prefix)


def pick(entries, now):
    """The backup of a series to recover from: the newest that was verified when it was made and is not marked
    anomalous (a wiped database's backup is kept, never restored by default); plus the newer ones passed over,
    so the plan can say why. ``entries`` oldest first, one label."""
    passed = []
    for entry in reversed(entries):
        if in_future(entry, now):
            continue
        info = entry.as_dict()
        if entry.verified and not info["anomalous"]:
            return entry, passed
        passed.append(dict(name=entry.name, reason="anomalous (%s)" % "; ".join(info["anomalies"])
                           if info["anomalous"] else "not verified when it was made"))
    return None, passed


def by_label(entries):
    labels = {}
    for entry in entries:
        parsed = mf.parse_name(entry.name)
        if parsed:
            labels.setdefault(parsed[0], []).append(entry)
    return labels


def describe(entry, now):
    m = entry.manifest
    return dict(name=entry.name, label=mf.parse_name(entry.name)[0], time=mf.isoformat(entry.when),
                timestamp=int(entry.when.timestamp()), age_seconds=int((now - entry.when).total_seconds()),
                size=m.get("size"), encrypted=bool(m.get("encryption")), location=entry.location,
                server_version=m.get("server_version"),
                release=m.get("release"))


def drill_times(history_path):
    """The restore time of the newest passing drill of each database, from the restore_drill history
    (``{database: (seconds, when)}``); {} when there is none on this host."""
    times = {}
    for drill in read_lines(history_path):
        if drill.get("passed") and drill.get("restore_seconds") is not None and drill.get("database"):
            times[drill["database"]] = (float(drill["restore_seconds"]), drill.get("time"))
    return times


def predicted_seconds(databases, times):
    """Seconds the databases' restores take by the drill history (None when a database was never drilled here),
    and one sentence saying where that comes from."""
    known = [d["label"] for d in databases if d["label"] in times]
    unknown = [d["label"] for d in databases if d["label"] not in times]
    if not databases:
        return None, "no database to restore"
    if unknown:
        return None, "no passing drill of %s in this host's drill history, so no prediction" % ", ".join(unknown)
    total = sum(times[label][0] for label in known)
    return round(total, 1), "%.0f s by the last passing drills (%s)" % (total, ", ".join(
        "%s %.1f s on %s" % (label, times[label][0], times[label][1]) for label in known))


def plan_lines(plan):
    """The plan as the lines the role prints before it touches anything."""
    lines = []
    for what, item in [("config", plan["config"]), ("images", plan["images"]), ("globals", plan["globals"])]:
        if item:
            lines.append("%s: %s (%s, %s old)" % (what, item["name"], size_text(item["size"]),
                                                  age_text(item["age_seconds"])))
        else:
            lines.append("%s: none in the offsite copy" % what)
    for kind in ("databases", "volumes"):
        for item in plan[kind]:
            lines.append("%s %s: %s (%s, %s old)" % (
                kind[:-1], item["label"], item["name"], size_text(item["size"]), age_text(item["age_seconds"])))
    for skipped in plan["passed_over"]:
        lines.append("passed over %s: %s" % (skipped["name"], skipped["reason"]))
    lines.append("total %s to download; restore time of the databases: %s" % (
        size_text(plan["total_size"]), plan["prediction"]))
    return lines
