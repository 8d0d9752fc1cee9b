"""The pure part of disaster recovery's plan: which backup of a series is recovered from, where each kind lives
in the offsite copy, and what the drill history predicts."""

import datetime
import json

from ansible_collections.stackops.runbook.plugins.module_utils import _recovery
from ansible_collections.stackops.runbook.plugins.module_utils._storage import BackupEntry

NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.timezone.utc)


def entry(hour, verified=True, anomalies=(), day=28, label="app"):
    when = datetime.datetime(2026, 11, day, hour, 0, tzinfo=datetime.timezone.utc)
    name = "%s_%s" % (label, when.strftime("%Y%m%dT%H%M%SZ"))
    manifest = dict(name=name, file=name + ".dump.zst", size=1000 * hour, verified=verified,
                    anomalous=bool(anomalies), anomalies=list(anomalies))
    return BackupEntry(name, when, manifest, "s3://b/" + name)


def test_the_newest_verified_normal_backup_is_recovered_and_newer_ones_passed_over_say_why():
    entries = [entry(1), entry(3), entry(5, verified=False), entry(7, anomalies=["table public.users is gone"])]
    picked, passed = _recovery.pick(entries, NOW)
    assert picked.name == "app_20261128T030000Z"
    assert [p["name"] for p in passed] == ["app_20261128T070000Z", "app_20261128T050000Z"]
    assert "public.users is gone" in passed[0]["reason"] and passed[1]["reason"] == "not verified when it was made"


def test_a_backup_dated_in_the_future_is_never_the_one_recovered():
    picked, passed = _recovery.pick([entry(3), entry(11, day=30)], NOW)
    assert picked.name == "app_20261128T030000Z" and passed == []


def test_no_good_backup_picks_nothing():
    picked, passed = _recovery.pick([entry(3, verified=False)], NOW)
    assert picked is None and len(passed) == 1


def test_each_kind_is_where_the_backup_role_sends_it():
    s3 = dict(bucket="b", prefix="prod", secret_key="s")
    assert _recovery.s3_for(s3, "databases") is s3 and _recovery.s3_for(s3, "globals") is s3
    assert _recovery.s3_for(s3, "volumes") == dict(s3, prefix="prod/volumes")
    assert _recovery.s3_for(dict(bucket="b", prefix=""), "config")["prefix"] == "config"


def test_the_drill_history_predicts_the_restore_time_only_when_every_database_was_drilled(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text("\n".join([
        json.dumps(dict(database="app", passed=True, restore_seconds=10.0, time="t1")),
        json.dumps(dict(database="app", passed=True, restore_seconds=12.5, time="t2")),
        json.dumps(dict(database="app", passed=False, restore_seconds=99.0, time="t3")),
        '{"database": "billing", "passed": tr',  # a line cut by a crash
        json.dumps(dict(database="billing", passed=True, restore_seconds=3.0, time="t4"))]) + "\n")
    times = _recovery.drill_times(str(history))
    assert times == {"app": (12.5, "t2"), "billing": (3.0, "t4")}
    seconds, why = _recovery.predicted_seconds([dict(label="app"), dict(label="billing")], times)
    assert seconds == 15.5 and "app 12.5 s on t2" in why
    seconds, why = _recovery.predicted_seconds([dict(label="app"), dict(label="crm")], times)
    assert seconds is None and "no passing drill of crm" in why
    assert _recovery.drill_times(str(tmp_path / "missing.jsonl")) == {}


def test_the_plan_lines_name_every_backup_and_what_is_missing():
    plan = dict(config=_recovery.describe(entry(3, label="config"), NOW), images=None, globals=None,
                databases=[_recovery.describe(entry(3), NOW)], volumes=[],
                passed_over=[dict(name="app_x", reason="anomalous (...)")], total_size=6000, prediction="unknown")
    lines = _recovery.plan_lines(plan)
    assert lines[0] == "config: config_20261128T030000Z (2.9 KiB, 9.0 h old)"
    assert "images: none in the offsite copy" in lines and "database app: app_20261128T030000Z (2.9 KiB, 9.0 h old)" in lines
    assert "passed over app_x: anomalous (...)" in lines and lines[-1].startswith("total 5.9 KiB to download")
