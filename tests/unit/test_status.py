"""The morning check's verdicts (runbook_status): what needs a person, from what the roles left on a host."""

import datetime
import os

from ansible_collections.stackops.runbook.plugins.module_utils import _status as st
from ansible_collections.stackops.runbook.plugins.module_utils._storage import BackupEntry

NOW = datetime.datetime(2026, 11, 28, 9, 0, tzinfo=datetime.timezone.utc)
HOUR = 3600


def entry(label, hours_ago, kind="database", **manifest):
    when = NOW - datetime.timedelta(hours=hours_ago)
    name = "%s_%s" % (label, when.strftime("%Y%m%dT%H%M%SZ"))
    return BackupEntry(name, when, dict(dict(kind=kind, size=1024, verified=True), **manifest), "/b/" + name)


def test_a_fresh_verified_offsite_backup_is_no_problem_and_an_old_one_is_over_the_rpo():
    local = [entry("app", 30), entry("app", 5, encryption={"recipients": 1}), entry("globals", 5, kind="globals")]
    rows = st.backup_rows("database", local, list(local), ["app", "globals"], 26 * HOUR, NOW)
    assert [(r["what"], r["age_seconds"], r["offsite"], r["encrypted"], r["problems"]) for r in rows] == [
        ("database app", 5 * HOUR, True, True, []), ("the globals", 5 * HOUR, True, False, [])]
    assert st.backup_line(rows[0]).startswith("database app: app_20261128T040000Z, 5.0 h old (RPO 26.0 h), 1.0 KiB, "
                                              "verified, encrypted, offsite")
    old = st.backup_rows("database", local[:1], local[:1], [], 26 * HOUR, NOW)
    assert old[0]["problems"] == ["newest backup of database app is 30.0 h old, older than the RPO (26.0 h)"]


def test_unverified_anomalous_not_offsite_and_missing_backups_are_problems():
    newest = entry("app", 2, verified=False, anomalous=True, anomalies=["public.users lost 100% of its rows"])
    rows = st.backup_rows("database", [entry("app", 20), newest], [entry("app", 20)], ["app", "billing"], None, NOW)
    app, billing = rows
    assert app["name"] == newest.name and app["offsite"] is False
    assert [p.split(" (")[0] for p in app["problems"]] == ["newest backup of database app"] * 3
    assert "was not verified" in app["problems"][0] and "anomalous: public.users lost" in app["problems"][1]
    assert app["problems"][2].endswith("has no offsite copy")
    assert billing["problems"] == ["no backup of database billing found"] and st.backup_line(billing).endswith("no backup")
    acknowledged = entry("app", 2, anomalous=True, anomaly_acknowledged=True)
    assert st.backup_rows("database", [acknowledged], None, [], None, NOW)[0]["problems"] == []


def test_a_backup_dated_in_the_future_is_never_the_newest_and_only_offsite_is_fine_without_a_local_copy():
    future = entry("app", -48)
    rows = st.backup_rows("volume", [entry("uploads", 1, kind="volume")], [entry("app", 3), future], [], None, NOW)
    assert [(r["label"], r["name"].split("_")[1], r["local"], r["offsite"], r["problems"]) for r in rows] == [
        ("app", "20261128T060000Z", False, True, []), ("uploads", "20261128T080000Z", True, False,
                                                       ["newest backup of volume uploads (%s) has no offsite copy"
                                                        % rows[1]["name"]])]


def test_the_last_drill_of_each_database_failed_slow_overdue_or_never():
    history = [dict(time="2026-11-27T04:00:00Z", database="app", passed=False, failures=["row_count"], log="/d/1.md"),
               dict(time="2026-11-28T04:00:00Z", database="app", passed=True, restore_seconds=12.5, rto_seconds=300),
               dict(time="2026-11-10T04:00:00Z", database="billing", passed=True, restore_seconds=400, rto_seconds=300),
               dict(time="2026-11-27T04:00:00Z", database="crm", passed=False, failures=["spot_check"], log="/d/c.md")]
    rows = {r["database"]: r for r in st.drill_rows(history, ["app", "audit"], 8 * 86400, NOW)}
    assert rows["app"]["passed"] and rows["app"]["problems"] == [] and rows["app"]["age_seconds"] == 5 * HOUR
    assert rows["billing"]["problems"] == ["the last drill of billing restored in 400 s, over its RTO of 300 s",
                                           "the last drill of billing was 18.2 d ago, more than its interval (8.0 d)"]
    assert rows["crm"]["problems"] == ["the last drill of crm failed (spot_check): see /d/c.md"]
    assert rows["audit"]["problems"] == ["audit was never drilled on this host"]


def test_the_release_serving_and_how_the_last_attempt_ended():
    good = dict(action="deploy", attempt="a1", version="1.4.0", time="2026-11-20T10:00:00Z")
    ledger = [dict(good, result="started"), dict(good, result="succeeded")]
    row = st.release_row(ledger)
    assert (row["serving_version"], row["last_result"], row["problems"]) == ("1.4.0", "succeeded", [])
    bad = dict(action="deploy", attempt="b2", version="1.5.0", time="2026-11-27T10:00:00Z")
    row = st.release_row(ledger + [dict(bad, result="started"), dict(bad, result="rolled_back", message="gate failed")])
    assert row["serving_version"] == "1.4.0" and row["last_version"] == "1.5.0"
    assert row["problems"] == ["the last deploy (1.5.0 at 2026-11-27T10:00:00Z) ended rolled_back: gate failed"]
    killed = st.release_row(ledger + [dict(bad, result="switched")])
    assert "never finished (switched)" in killed["problems"][0]
    assert st.release_row([]) is None


def test_secrets_overdue_unfinished_or_never_rotated(tmp_path):
    for name, stages, days in (("db_password", ["current"], 10), ("api_key", ["current"], 120),
                               ("session", ["current", "pending"], 1)):
        os.makedirs(tmp_path / name)
        for stage in stages:
            (tmp_path / name / stage).write_text("x")
            os.utime(tmp_path / name / stage, (NOW.timestamp() - days * 86400,) * 2)
    rows = {r["name"]: r for r in st.secret_rows(str(tmp_path), [], 100 * 86400, NOW)}
    assert sorted(rows) == ["api_key", "db_password", "session"]
    assert rows["db_password"]["problems"] == [] and rows["db_password"]["age_seconds"] == 10 * 86400
    assert rows["api_key"]["problems"] == ["api_key was last rotated 120.0 d ago, more than its interval (100.0 d)"]
    assert rows["session"]["pending"] and "unfinished" in rows["session"]["problems"][0]
    never = st.secret_rows(str(tmp_path), ["smtp_password"], 100 * 86400, NOW)[0]
    assert never["rotated"] is None and never["problems"] == [] and "never rotated" in never["notes"][0]
    assert st.problems_of([rows["api_key"]], [None]) == rows["api_key"]["problems"]
