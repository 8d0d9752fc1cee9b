"""The offsite copy in a real S3 API: the backup and its manifest uploaded (multipart for large
files), byte for byte, and retention applied there too."""

import datetime
import hashlib
import json
import os
import time

from conftest import run_module


def test_the_backup_and_its_manifest_land_in_s3_byte_for_byte(host_pg, dest, s3, s3_prefix):
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest,
                                          s3=dict(s3.options(s3_prefix), multipart_chunk_size_mb=5)))
    assert not result.get("failed"), result.get("msg")
    data_key = "%s/%s" % (s3_prefix, os.path.basename(result["path"]))
    manifest_key = "%s/%s" % (s3_prefix, os.path.basename(result["manifest_path"]))
    assert result["s3_uri"] == "s3://%s/%s" % (s3.bucket, data_key)
    assert s3.keys(s3_prefix) == sorted([data_key, manifest_key])
    body = s3.client.get_object(Bucket=s3.bucket, Key=data_key)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == result["sha256"]
    assert result["size"] > 5 * 1024 * 1024  # large enough to go up in several parts
    remote_manifest = json.loads(s3.client.get_object(Bucket=s3.bucket, Key=manifest_key)["Body"].read())
    assert remote_manifest == result["manifest"]


def test_a_directory_backup_is_uploaded_file_by_file(host_pg, dest, s3, s3_prefix):
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, format="directory",
                                          s3=s3.options(s3_prefix)))
    assert not result.get("failed"), result.get("msg")
    name = os.path.basename(result["path"])
    expected = sorted(["%s/%s/%s" % (s3_prefix, name, f["path"]) for f in result["manifest"]["files"]]
                      + ["%s/%s" % (s3_prefix, os.path.basename(result["manifest_path"]))])
    assert s3.keys(s3_prefix) == expected


def test_retention_applies_in_s3_too(host_pg, dest, s3, s3_prefix):
    names = []
    for _run in range(3):
        result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest,
                                              s3=s3.options(s3_prefix), keep_last=2))
        assert not result.get("failed"), result.get("msg")
        names.append(result["manifest"]["name"])
    pruned = result["pruned"]
    # the oldest goes, locally and in S3
    assert [p["name"] for p in pruned] == [names[0], names[0]]
    assert {p["location"].startswith("s3://") for p in pruned} == {True, False}
    remote = s3.keys(s3_prefix)
    assert len(remote) == 4 and not [k for k in remote if names[0] in k]
    assert sorted(n for n in os.listdir(dest) if not n.startswith(".")) == sorted(
        "%s%s" % (n, suffix) for n in names[1:] for suffix in (".sql.zst", ".manifest.json"))


def test_sse_and_storage_class_are_set_on_the_objects(host_pg, dest, s3, s3_prefix):
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest,
                                          s3=dict(s3.options(s3_prefix), sse="AES256", storage_class="STANDARD_IA")))
    assert not result.get("failed"), result.get("msg")
    head = s3.client.head_object(Bucket=s3.bucket, Key="%s/%s" % (s3_prefix, os.path.basename(result["path"])))
    assert head["ServerSideEncryption"] == "AES256"
    assert head["StorageClass"] == "STANDARD_IA"


def test_object_lock_is_set_on_upload_and_retention_skips_what_is_still_locked(host_pg, dest, s3, s3_prefix):
    bucket = "locked-" + s3_prefix.replace("/", "-").lower()[-20:]
    s3.client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    options = dict(s3.options(s3_prefix), bucket=bucket, object_lock_mode="GOVERNANCE", object_lock_days=1)
    first = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest, s3=options,
                                         keep_last=1, keep_days=0))
    assert not first.get("failed"), first.get("msg")
    head = s3.client.head_object(Bucket=bucket, Key="%s/%s" % (s3_prefix, first["manifest"]["file"]))
    assert head["ObjectLockMode"] == "GOVERNANCE"
    second = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest, s3=options,
                                          keep_last=1, keep_days=0))
    assert not second.get("failed"), second.get("msg")
    # locally the first goes; in S3 it stays, said so with the lock's end, and nothing failed
    assert [p["location"].startswith("s3://") for p in second["pruned"]] == [False]
    assert [lk["name"] for lk in second["locked"]] == [first["manifest"]["name"]]
    assert second["locked"][0]["until"] > second["manifest"]["finished_at"]
    remote = s3.client.list_objects_v2(Bucket=bucket, Prefix=s3_prefix)["Contents"]
    assert len(remote) == 4

    info = run_module("backup_info", dict(s3=dict(s3.options(s3_prefix), bucket=bucket)))
    assert info["bucket"]["versioning"] == "Enabled" and info["bucket"]["object_lock"] == "Enabled"
    plain = run_module("backup_info", dict(s3=s3.options(s3_prefix)))
    assert plain["bucket"]["object_lock"] == "Disabled"

    # once the lock has expired, the next run prunes it
    key = "%s/%s" % (s3_prefix, first["manifest"]["file"])
    s3.client.put_object_retention(Bucket=bucket, Key=key, BypassGovernanceRetention=True, Retention=dict(
        Mode="GOVERNANCE", RetainUntilDate=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)))
    time.sleep(2)
    third = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest, s3=options,
                                         keep_last=1, keep_days=0))
    assert first["manifest"]["name"] in [p["name"] for p in third["pruned"] if p["location"].startswith("s3://")]


def test_object_lock_options_go_together(host_pg, dest, s3, s3_prefix):
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest,
                                          s3=dict(s3.options(s3_prefix), object_lock_mode="COMPLIANCE")))
    assert result.get("failed") and "object_lock_days" in result["msg"] and not os.path.exists(dest)
