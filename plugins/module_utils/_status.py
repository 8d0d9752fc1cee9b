# -*- coding: utf-8 -*-
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The morning check (runbook_status's engine): from what the roles left on a host - the backups and their
manifests, the offsite listing, the drill history, the release ledger, the secrets' versions - one row per thing
a person looks after, and the problems among them (what needs a person) apart from the notes (worth knowing).
Private to this collection."""

from __future__ import annotations

import datetime
import os

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils import _release as rel
from ansible_collections.stackops.runbook.plugins.module_utils import _secrets as sec
from ansible_collections.stackops.runbook.plugins.module_utils._module import parse_time
from ansible_collections.stackops.runbook.plugins.module_utils._storage import in_future
from ansible_collections.stackops.runbook.plugins.module_utils._units import age_text, size_text


def newest_by_label(entries, now):
    """The newest backup of each label (database, globals or volume), never one dated in the future."""
    newest = {}
    for entry in entries:  # oldest first
        parsed = mf.parse_name(entry.name)
        if parsed and not in_future(entry, now):
            newest[parsed[0]] = entry
    return newest


def backup_rows(kind, local, offsite, expected, rpo, now):
    """One row per series of ``kind`` (database or volume): its newest backup, here or (without a local copy)
    offsite. ``local``/``offsite``: BackupEntry lists oldest first, ``offsite`` None when no offsite copy is
    configured; ``expected``: labels that must have one."""
    here, there = newest_by_label(local, now), newest_by_label(offsite or [], now)
    rows = []
    for label in sorted(set(here) | set(there) | set(expected)):
        entry = here.get(label) or there.get(label)
        # the globals are a kind of their own in the directory of the databases
        row = dict(kind="globals" if label == "globals" else kind, label=label, problems=[],
                   what="the globals" if label == "globals" else "%s %s" % (kind, label))
        if entry is None:
            row.update(name=None, problems=["no backup of %s found" % row["what"]])
            rows.append(row)
            continue
        info = entry.as_dict()
        age = int((now - entry.when).total_seconds())
        row.update(name=entry.name, time=info["time"], age_seconds=age, age=age_text(age), size=info["size"],
                   size_text=size_text(info["size"]), verified=info["verified"],
                   encrypted=info["encrypted"], anomalous=info["anomalous"], anomalies=info["anomalies"],
                   local=label in here and here[label].name == entry.name,
                   offsite=None if offsite is None else label in there and there[label].name == entry.name,
                   rpo_seconds=rpo)
        if rpo and age > rpo:
            row["problems"].append("newest backup of %s is %s old, older than the RPO (%s)" % (
                row["what"], age_text(age), age_text(rpo)))
        if not info["verified"]:
            row["problems"].append("newest backup of %s (%s) was not verified" % (row["what"], entry.name))
        if info["anomalous"]:
            row["problems"].append("newest backup of %s (%s) is anomalous: %s; look at the data, then acknowledge it "
                                   "or restore" % (row["what"], entry.name, "; ".join(info["anomalies"])))
        if offsite is not None and not row["offsite"]:
            row["problems"].append("newest backup of %s (%s) has no offsite copy" % (row["what"], entry.name))
        rows.append(row)
    return rows


def drill_rows(history, databases, interval, now):
    """The last drill of each database in the restore_drill history (and of each of ``databases``, drilled or
    not): passed, restore time against the RTO, age against the interval."""
    last = {}
    for drill in history:
        if drill.get("database"):
            last[drill["database"]] = drill
    rows = []
    for database in sorted(set(last) | set(databases)):
        drill = last.get(database)
        row = dict(database=database, problems=[])
        if drill is None:
            row.update(time=None, problems=["%s was never drilled on this host" % database])
            rows.append(row)
            continue
        try:
            age = int((now - parse_time(drill.get("time"))).total_seconds())
        except (TypeError, ValueError):
            age = None
        row.update(time=drill.get("time"), age_seconds=age, age=age_text(age) if age is not None else None,
                   passed=bool(drill.get("passed")), backup=drill.get("backup"),
                   restore_seconds=drill.get("restore_seconds"), rto_seconds=drill.get("rto_seconds"),
                   failures=drill.get("failures") or [], log=drill.get("log"))
        if not row["passed"]:
            row["problems"].append("the last drill of %s failed (%s): see %s" % (
                database, ", ".join(row["failures"]) or "failed", row["log"]))
        if row["passed"] and row["rto_seconds"] and (row["restore_seconds"] or 0) > row["rto_seconds"]:
            row["problems"].append("the last drill of %s restored in %.0f s, over its RTO of %.0f s" % (
                database, row["restore_seconds"], row["rto_seconds"]))
        if interval and age is not None and age > interval:
            row["problems"].append("the last drill of %s was %s ago, more than its interval (%s)" % (
                database, age_text(age), age_text(interval)))
        rows.append(row)
    return rows


def release_row(ledger):
    """What serves (the newest good release) and how the last deploy or rollback went, from compose_release's
    ledger (one line per attempt and step, oldest first)."""
    attempts = {}
    for entry in ledger:  # the last line of an attempt is how it ended
        attempts[entry.get("attempt") or id(entry)] = entry
    ordered = [e for e in ledger if attempts.get(e.get("attempt") or id(e)) is e]
    if not ordered:
        return None
    serving = next((e for e in reversed(ordered) if e.get("result") == rel.GOOD), None)
    last = ordered[-1]
    row = dict(serving_version=serving.get("version") if serving else None,
               serving_since=serving.get("time") if serving else None,
               last_action=last.get("action"), last_version=last.get("version"), last_result=last.get("result"),
               last_time=last.get("time"), last_actor=last.get("actor"), problems=[])
    if last.get("result") in rel.UNFINISHED:
        row["problems"].append("the %s of %s at %s never finished (%s): run the deploy or rollback again, which "
                               "cleans it up" % (last.get("action"), last.get("version"), last.get("time"),
                                                 last.get("result")))
    elif last.get("result") != rel.GOOD:
        row["problems"].append("the last %s (%s at %s) ended %s: %s" % (
            last.get("action"), last.get("version"), last.get("time"), last.get("result"),
            last.get("message") or "see the release ledger"))
    return row


def secret_rows(state_dir, names, interval, now):
    """When each secret was last rotated (its ``current`` version's time) and whether a rotation is unfinished;
    ``names`` default to every secret's folder in ``state_dir``."""
    if not names and os.path.isdir(state_dir):
        names = sorted(n for n in os.listdir(state_dir)
                       if os.path.isdir(os.path.join(state_dir, n)) and sec.NAME_PATTERN.match(n))
    rows = []
    for name in names or []:
        store = sec.VersionStore(state_dir, name)
        rotated = store.rotated_at()
        row = dict(name=name, rotated=None, age_seconds=None, age=None, pending=store.has("pending"), problems=[],
                   notes=[])
        if rotated is not None:
            age = int(now.timestamp() - rotated)
            row.update(rotated=mf.isoformat(datetime.datetime.fromtimestamp(rotated, datetime.timezone.utc)),
                       age_seconds=age, age=age_text(age))
            if interval and age > interval:
                row["problems"].append("%s was last rotated %s ago, more than its interval (%s)" % (
                    name, age_text(age), age_text(interval)))
        else:
            row["notes"].append("%s was never rotated by this collection, so its age is unknown" % name)
        if row["pending"]:
            row["problems"].append("the rotation of %s is unfinished (a pending value is kept): run the rotation "
                                   "again, which finishes or reverts it" % name)
        rows.append(row)
    return rows


def backup_line(row):
    if row.get("name") is None:
        return "%s: no backup" % row["what"]
    flags = [("verified" if row["verified"] else "NOT verified"),
             ("encrypted" if row["encrypted"] else "not encrypted")]
    if row["offsite"] is not None:
        flags.append("offsite" if row["offsite"] else "NOT offsite")
    if row["anomalous"]:
        flags.append("ANOMALOUS")
    rpo = " (RPO %s)" % age_text(row["rpo_seconds"]) if row["rpo_seconds"] else ""
    return "%s: %s, %s old%s, %s, %s" % (row["what"], row["name"], age_text(row["age_seconds"]), rpo,
                                         size_text(row["size"]), ", ".join(flags))


def problems_of(*groups):
    """Every problem of the rows, in order."""
    return [problem for rows in groups for row in rows if row for problem in row.get("problems", [])]
