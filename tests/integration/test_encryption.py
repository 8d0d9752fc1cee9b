"""Client-side age encryption with the real ``age`` program: an encrypted backup is an age file on disk and
in S3, restores with the stock tools only, restores and drills with the identity, is refused without it
or with a wrong one (nothing changed), and the identity is in no command line, no -vvv output and no file
left behind. Same for a docker volume."""

import json
import os
import stat
import subprocess
import uuid

import pytest

from conftest import (
    TEST_LABEL,
    exact_counts,
    local_inventory,
    postgres_image,
    run_module,
    run_playbook,
)
from test_volumes import FILL, docker, listing

AGE_MAGIC = b"age-encryption.org/v1\n"


class Key:
    def __init__(self, directory, name):
        self.path = os.path.join(directory, name + ".key")
        subprocess.run(["age-keygen", "-o", self.path], check=True, capture_output=True)
        self.recipient = subprocess.run(["age-keygen", "-y", self.path], check=True, capture_output=True,
                                        text=True).stdout.strip()
        with open(self.path) as fh:
            self.secret = [line for line in fh.read().splitlines() if line.startswith("AGE-SECRET-KEY-1")][0]


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("age-keys"))
    return dict(ops=Key(directory, "ops"), other=Key(directory, "other"))


@pytest.fixture
def age_spy(tmp_path, monkeypatch):
    """``age`` first on PATH is a wrapper that records each command line (and environment), then runs the
    real program: what ``ps`` would have shown during the run."""
    bindir = tmp_path / "spy"
    bindir.mkdir()
    log = tmp_path / "age-calls.log"
    real = subprocess.run(["sh", "-c", "command -v age"], check=True, capture_output=True, text=True).stdout.strip()
    wrapper = bindir / "age"
    wrapper.write_text('#!/bin/sh\nprintf "%%s\\n" "$*" >> %s\nenv >> %s\nexec %s "$@"\n' % (log, log, real))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    return log


def age_decrypt_zstd_pg_restore(pg, key, path, database):
    """The documented recovery without the collection: age -d -i KEY FILE | zstd -d | pg_restore -d DB."""
    pg.psql("postgres", 'DROP DATABASE IF EXISTS "%s"' % database)
    pg.psql("postgres", 'CREATE DATABASE "%s"' % database)
    proc = subprocess.run(["sh", "-c", 'age -d -i "$1" "$2" | zstd -d | pg_restore --exit-on-error -d "$3"', "sh",
                           key.path, path, database], capture_output=True, env=pg.env(), check=False)
    assert proc.returncode == 0, proc.stderr.decode()


def test_an_encrypted_backup_restores_with_stock_tools_and_with_the_identity_only(host_pg, dest, s3, s3_prefix,
                                                                                  keys, age_spy):
    ops, other = keys["ops"], keys["other"]
    result = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest,
                                          age_recipients=[ops.recipient], s3=s3.options(s3_prefix)))
    assert not result.get("failed"), result.get("msg")
    manifest = result["manifest"]
    assert result["path"].endswith(".dump.zst.age")
    with open(result["path"], "rb") as fh:
        stored = fh.read()
    assert stored.startswith(AGE_MAGIC) and b"PGDMP" not in stored
    body = s3.client.get_object(Bucket=s3.bucket, Key="%s/%s" % (s3_prefix, manifest["file"]))["Body"].read()
    assert body == stored
    encryption = manifest["encryption"]
    assert encryption["method"] == "age" and encryption["recipients"] == [ops.recipient]
    assert encryption["plaintext_sha256"] != manifest["sha256"] and manifest["size"] == len(stored)
    assert manifest["verification"]["method"] == "sha256+decompress+pg_restore-list"

    # the stock tools alone give the source's rows
    age_decrypt_zstd_pg_restore(host_pg, ops, result["path"], "app_stock")
    assert exact_counts(host_pg.psql, "app_stock") == manifest["row_counts"]

    # no identity: refused before anything is touched, naming the options
    refused = run_module("pg_restore", dict(host_pg.connection(), database="app", target_database="app_enc",
                                            path=dest))
    assert refused.get("failed") and "age_identity_file or age_identity" in refused["msg"]
    assert host_pg.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'app_enc'") == "0"
    # a wrong identity: refused too, saying so
    wrong = run_module("pg_restore", dict(host_pg.connection(), database="app", target_database="app_stock",
                                          path=dest, confirm="app_stock", age_identity=other.secret))
    assert wrong.get("failed") and "other recipients" in wrong["msg"], wrong.get("msg")
    assert "AGE-SECRET-KEY" not in json.dumps(wrong)
    assert exact_counts(host_pg.psql, "app_stock") == manifest["row_counts"]

    # the identity as a file on the host, from S3, in parallel
    restored = run_module("pg_restore", dict(host_pg.connection(), database="app", target_database="app_enc",
                                             s3=s3.options(s3_prefix), age_identity_file=ops.path, jobs=2))
    assert not restored.get("failed"), restored.get("msg")
    assert restored["row_counts"] == manifest["row_counts"] and restored["differences"] == {}
    # the identity as text (from a vault), in a drill
    drill = run_module("restore_drill", dict(host_pg.connection(), database="app", path=dest,
                                             log_dir=os.path.join(dest, "drills"), age_identity=ops.secret))
    assert not drill.get("failed"), drill.get("msg")
    assert drill["passed"], drill
    info = run_module("backup_info", dict(path=dest, database="app", verify=True, age_identity=ops.secret))
    assert info["verified"][0]["method"] == "age-decrypt+sha256+decompress"
    public_only = run_module("backup_info", dict(path=dest, database="app", verify=True))
    assert not public_only.get("failed") and public_only["verified"][0]["method"].startswith("sha256 (encrypted")

    calls = age_spy.read_text()
    assert "--decrypt -i /dev/fd/" in calls  # the text identity went through a pipe
    assert "-r %s" % ops.recipient in calls
    assert ops.secret not in calls and other.secret not in calls
    left = [os.path.join(d, f) for d, _dirs, fs in os.walk(dest) for f in fs]
    assert not [f for f in left if ops.secret.encode() in open(f, "rb").read()]
    for database in ("app_stock", "app_enc"):
        host_pg.psql("postgres", 'DROP DATABASE IF EXISTS "%s"' % database)


def test_a_damaged_encrypted_backup_is_refused_and_a_host_with_public_keys_sees_it(host_pg, dest, keys):
    ops = keys["ops"]
    result = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest,
                                          age_recipients=[ops.recipient]))
    assert not result.get("failed"), result.get("msg")
    with open(result["path"], "r+b") as fh:
        fh.seek(result["size"] - 20)
        fh.write(b"\0" * 8)
    info = run_module("backup_info", dict(path=dest, verify=True))
    assert info.get("failed") and "damaged" in info["msg"]
    decrypting = run_module("backup_info", dict(path=dest, verify=True, age_identity_file=ops.path))
    assert decrypting.get("failed") and "does not decrypt" in decrypting["msg"]


def test_bad_recipients_and_identities_are_refused_before_anything_is_done(host_pg, dest, keys):
    bad = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest,
                                       age_recipients=["not-a-key"]))
    assert bad.get("failed") and "age_recipients" in bad["msg"] and not os.path.exists(dest)
    directory = run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest, format="directory",
                                             age_recipients=[keys["ops"].recipient]))
    assert directory.get("failed") and "format=directory" in directory["msg"]
    both = run_module("pg_restore", dict(host_pg.connection(), database="app", target_database="x", path=dest,
                                         age_identity="AGE-SECRET-KEY-1XYZ", age_identity_file=keys["ops"].path))
    assert both.get("failed") and "not both" in both["msg"]
    garbage = run_module("pg_restore", dict(host_pg.connection(), database="app", target_database="x", path=dest,
                                            age_identity="hunter2"))
    assert garbage.get("failed") and "age_identity is not" in garbage["msg"] and "hunter2" not in garbage["msg"]


def test_the_identity_never_appears_at_vvv(host_pg, dest, keys, tmp_path):
    ops = keys["ops"]
    run = run_module("pg_backup", dict(host_pg.connection(), globals_only=True, dest=dest,
                                       age_recipients=[ops.recipient]))
    assert not run.get("failed"), run.get("msg")
    playbook = tmp_path / "info.yml"
    playbook.write_text(
        "- hosts: db\n  gather_facts: false\n  tasks:\n"
        "    - stackops.runbook.backup_info: {path: '%s', verify: true, age_identity: '{{ identity }}'}\n" % dest)
    rc, out, err = run_playbook(str(playbook), local_inventory(tmp_path), dict(identity=ops.secret), verbosity=3,
                                callback="ansible.builtin.default")
    assert rc == 0, out + err
    assert "age-decrypt" in out
    assert ops.secret not in out and ops.secret not in err


@pytest.fixture
def volume():
    name = "stackops-test-vol-" + uuid.uuid4().hex[:8]
    docker("volume", "create", "--label", TEST_LABEL + "=1", name)
    docker("run", "--rm", "--label", TEST_LABEL + "=1", "-v", name + ":/data", "--entrypoint", "sh", postgres_image(),
           "-c", FILL)
    yield name
    docker("volume", "rm", "-f", name, name + "-restored", check=False)


def test_an_encrypted_volume_backup_restores_with_stock_tools_and_with_the_identity(volume, dest, keys, age_spy):
    ops = keys["ops"]
    result = run_module("volume_backup", dict(volume=volume, dest=dest, helper_image=postgres_image(),
                                              age_recipients=[ops.recipient]))
    assert not result.get("failed"), result.get("msg")
    assert result["path"].endswith(".tar.gz.age")
    with open(result["path"], "rb") as fh:
        assert fh.read(len(AGE_MAGIC)) == AGE_MAGIC
    # stock tools: age -d | gzip -d | tar -t lists what the manifest counted
    names = subprocess.run(["sh", "-c", 'age -d -i "$1" "$2" | gzip -d | tar -t', "sh", ops.path, result["path"]],
                           check=True, capture_output=True, text=True).stdout.split()
    assert len(names) == result["manifest"]["members"]
    target = volume + "-restored"
    refused = run_module("volume_restore", dict(volume=target, from_volume=volume, path=dest,
                                                helper_image=postgres_image()))
    assert refused.get("failed") and "age_identity" in refused["msg"]
    wrong = run_module("volume_restore", dict(volume=target, from_volume=volume, path=dest,
                                              helper_image=postgres_image(), age_identity=keys["other"].secret))
    assert wrong.get("failed") and "other recipients" in wrong["msg"]
    assert docker("volume", "ls", "-q", "--filter", "name=" + target).strip() == ""
    restored = run_module("volume_restore", dict(volume=target, from_volume=volume, path=dest,
                                                 helper_image=postgres_image(), age_identity=ops.secret))
    assert not restored.get("failed"), restored.get("msg")
    assert listing(target) == listing(volume)
    assert stat.S_IMODE(os.stat(result["path"]).st_mode) == 0o600
    calls = age_spy.read_text()
    assert "--decrypt -i /dev/fd/" in calls and ops.secret not in calls and keys["other"].secret not in calls
