"""The offsite copy in a real S3 API: the backup and its manifest uploaded (multipart for large
files), byte for byte, and retention applied there too."""

import hashlib
import json
import os

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
