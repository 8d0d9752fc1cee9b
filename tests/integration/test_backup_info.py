"""backup_info: the backups from their manifests, freshness against the RPO, and re-verification
that finds bit rot and truncation, locally and in S3."""

import os

from conftest import age_backup, run_module


def make_backups(pg, dest, s3=None, prefix=None, count=2):
    results = []
    for _run in range(count):
        args = dict(pg.connection(), database="app", dest=dest)
        if s3:
            args["s3"] = s3.options(prefix)
        result = run_module("pg_backup", args)
        assert not result.get("failed"), result.get("msg")
        results.append(result)
    globals_result = run_module("pg_backup", dict(pg.connection(), globals_only=True, dest=dest))
    return results, globals_result


def test_it_lists_every_backup_and_the_latest_of_each_database(host_pg, dest):
    backups, globals_backup = make_backups(host_pg, dest)
    info = run_module("backup_info", dict(path=dest))
    assert not info.get("failed"), info.get("msg")
    assert [b["name"] for b in info["backups"]] == [b["manifest"]["name"] for b in backups] + [
        globals_backup["manifest"]["name"]]
    assert set(info["latest"]) == {"app", "globals"}
    latest = info["latest"]["app"]
    assert latest["name"] == backups[-1]["manifest"]["name"]
    assert latest["sha256"] == backups[-1]["sha256"] and latest["size"] == backups[-1]["size"]
    assert latest["verified"] is True and latest["format"] == "custom" and 0 <= latest["age_seconds"] < 120
    assert info["fresh"] is None


def test_a_recent_backup_is_fresh_and_an_old_one_is_stale(host_pg, dest):
    backups, _globals = make_backups(host_pg, dest, count=1)
    fresh = run_module("backup_info", dict(path=dest, database="app", max_age="26h", fail_if_stale=True))
    assert not fresh.get("failed") and fresh["fresh"] is True and fresh["stale"] == []
    age_backup(dest, backups[0]["manifest"]["name"], days=2)
    stale = run_module("backup_info", dict(path=dest, database="app", max_age="26h"))
    assert stale["fresh"] is False and stale["stale"] == ["app"] and stale["age_seconds"] > 47 * 3600
    failed = run_module("backup_info", dict(path=dest, database="app", max_age="26h", fail_if_stale=True))
    assert failed["failed"]
    assert "backups are stale (RPO 26h): app (latest is 48.0 hours old)" in failed["msg"]


def test_no_backup_at_all_is_stale(tmp_path):
    result = run_module("backup_info", dict(path=str(tmp_path), database="app", max_age="1d", fail_if_stale=True))
    assert result["failed"] and "app (none found)" in result["msg"]
    assert result["backups"] == [] and result["latest"] == {}


def test_verify_finds_a_flipped_byte_and_a_truncated_file(host_pg, dest):
    backups, _globals = make_backups(host_pg, dest)
    good = run_module("backup_info", dict(path=dest, verify=True, verify_scope="all"))
    assert not good.get("failed"), good.get("msg")
    assert len(good["verified"]) == 3
    flipped, truncated = backups[0]["path"], backups[1]["path"]
    with open(flipped, "r+b") as fh:
        fh.seek(os.path.getsize(flipped) // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with open(truncated, "r+b") as fh:
        fh.truncate(os.path.getsize(truncated) - 1000)
    bad = run_module("backup_info", dict(path=dest, verify=True, verify_scope="all"))
    assert bad["failed"]
    assert "2 backup(s) do not match their manifests" in bad["msg"]
    assert "%s is damaged" % flipped in bad["msg"] and "%s is damaged" % truncated in bad["msg"]
    assert [v["name"] for v in bad["verified"]] == [_globals["manifest"]["name"]]


def test_it_reads_and_verifies_the_s3_copies(host_pg, dest, s3, s3_prefix):
    backups, _globals = make_backups(host_pg, dest, s3, s3_prefix)
    info = run_module("backup_info", dict(s3=s3.options(s3_prefix), verify=True, max_age="1h"))
    assert not info.get("failed"), info.get("msg")
    assert [b["name"] for b in info["backups"]] == [b["manifest"]["name"] for b in backups]
    assert info["latest"]["app"]["location"] == backups[-1]["s3_uri"]
    assert info["fresh"] is True and [v["name"] for v in info["verified"]] == [backups[-1]["manifest"]["name"]]
    # bit rot in the bucket
    key = "%s/%s" % (s3_prefix, os.path.basename(backups[-1]["path"]))
    body = bytearray(s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    body[100] ^= 0x01
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=bytes(body))
    bad = run_module("backup_info", dict(s3=s3.options(s3_prefix), verify=True))
    assert bad["failed"] and "s3://%s/%s is damaged" % (s3.bucket, key) in bad["msg"]


def test_bad_input_is_refused(tmp_path):
    both = run_module("backup_info", dict(path=str(tmp_path), s3=dict(bucket="b")))
    assert both["failed"] and "mutually exclusive: path|s3" in both["msg"]
    duration = run_module("backup_info", dict(path=str(tmp_path), max_age="soon"))
    assert duration["failed"] and "max_age: 'soon' is not a duration" in duration["msg"]
    no_rpo = run_module("backup_info", dict(path=str(tmp_path), fail_if_stale=True))
    assert no_rpo["failed"] and "fail_if_stale needs max_age" in no_rpo["msg"]
