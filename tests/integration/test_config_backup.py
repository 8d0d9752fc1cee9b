"""config_backup and config_restore on real files, the real age program and the S3 API: a compose project and
the collection's ledgers go offsite encrypted, come back byte for byte with modes and links on another root,
a re-run changes nothing, a file that differs stops the restore before anything is written, and env files
never leave the host unencrypted unless the user says so."""

import hashlib
import os
import stat
import subprocess

import pytest

from conftest import run_module
from test_encryption import Key


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "srv" / "myapp"
    (root / "caddy").mkdir(parents=True)
    (root / "compose.yml").write_text("services:\n  api:\n    image: myapp-api:1.4.2\n")
    (root / ".env").write_text("POSTGRES_PASSWORD=s3cr3t-%s\n" % os.getpid())
    (root / ".env").chmod(0o600)
    (root / "caddy" / "Caddyfile").write_text("example.com {\n  reverse_proxy api:8000\n}\n")
    (root / "app.log").write_text("noise\n" * 1000)
    os.symlink("caddy/Caddyfile", str(root / "Caddyfile"))
    ledger = tmp_path / "var" / "log" / "stackops-runbook"
    ledger.mkdir(parents=True)
    (ledger / "ledger.jsonl").write_text('{"operation": "deploy", "result": "succeeded"}\n')
    return dict(root=str(root), ledger=str(ledger), tmp=tmp_path)


def tree(root):
    """{relative path: (type, mode, content sha256 or link target)} of everything under root."""
    found = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                what = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                what = ("dir", stat.S_IMODE(info.st_mode), None)
            else:
                with open(path, "rb") as fh:
                    what = ("file", stat.S_IMODE(info.st_mode), hashlib.sha256(fh.read()).hexdigest())
            found[os.path.relpath(path, root)] = what
    return found


def test_a_project_goes_offsite_encrypted_and_comes_back_exactly(project, dest, s3, s3_prefix, tmp_path):
    key = Key(str(tmp_path), "ops")
    made = run_module("config_backup", dict(paths=[project["root"], project["ledger"]], exclude=["*.log"], dest=dest,
                                            age_recipients=[key.recipient], s3=s3.options(s3_prefix)))
    assert not made.get("failed"), made.get("msg")
    manifest = made["manifest"]
    assert made["path"].endswith(".tar.gz.age") and manifest["kind"] == "config"
    entries = {e["path"]: e for e in manifest["entries"]}
    env = os.path.join(project["root"], ".env")
    assert entries[env]["mode"] == "0600" and entries[env]["sha256"] == hashlib.sha256(open(env, "rb").read()).hexdigest()
    assert entries[os.path.join(project["root"], "Caddyfile")]["target"] == "caddy/Caddyfile"
    assert not [p for p in entries if p.endswith(".log")]
    with open(made["path"], "rb") as fh:
        assert b"s3cr3t" not in fh.read()
    # stock tools: age -d | gzip -d | tar -t
    listed = subprocess.run(["sh", "-c", 'age -d -i "$1" "$2" | gzip -d | tar -t', "sh", key.path, made["path"]],
                            check=True, capture_output=True, text=True).stdout.split()
    assert len(listed) == manifest["members"] == len(manifest["entries"])

    expected = tree(project["root"])
    expected.pop("app.log")
    restore_root = str(tmp_path / "newserver")
    args = dict(s3=s3.options(s3_prefix), root=restore_root, age_identity_file=key.path)
    planned = run_module("config_restore", args, check_mode=True)
    assert planned["changed"] and os.path.join(project["root"], ".env") in planned["created"]
    assert not os.path.exists(restore_root)

    restored = run_module("config_restore", args)
    assert not restored.get("failed"), restored.get("msg")
    assert tree(restore_root + project["root"]) == expected
    assert tree(restore_root + project["ledger"]) == tree(project["ledger"])
    again = run_module("config_restore", args)
    assert not again["changed"] and again["unchanged"] == len(manifest["entries"])

    # a file that differs stops the restore before anything is written
    moved = restore_root + os.path.join(project["root"], "compose.yml")
    gone = restore_root + os.path.join(project["root"], "caddy", "Caddyfile")
    with open(moved, "a") as fh:
        fh.write("# edited by hand\n")
    os.unlink(gone)
    refused = run_module("config_restore", args)
    assert refused.get("failed") and "overwrite: true" in refused["msg"] and moved[len(restore_root):] in refused["msg"]
    assert not os.path.exists(gone)
    fixed = run_module("config_restore", dict(args, overwrite=True))
    assert fixed["replaced"] == [moved[len(restore_root):]] and fixed["created"] == [gone[len(restore_root):]]
    assert tree(restore_root + project["root"]) == expected

    no_key = run_module("config_restore", dict(args, age_identity_file=None))
    assert no_key.get("failed") and "age_identity" in no_key["msg"]
    wrong_kind = run_module("pg_restore", dict(database="app", target_database="x", s3=s3.options(s3_prefix),
                                               backup=manifest["name"]))
    assert wrong_kind.get("failed") and "restore it with config_restore" in wrong_kind["msg"]


def test_env_files_never_leave_the_host_unencrypted_unless_allowed(project, dest, s3, s3_prefix):
    refused = run_module("config_backup", dict(paths=[project["root"]], dest=dest, s3=s3.options(s3_prefix)))
    assert refused.get("failed") and "age_recipients" in refused["msg"] and "allow_plaintext" in refused["msg"]
    assert not os.path.exists(dest) and s3.keys(s3_prefix) == []
    allowed = run_module("config_backup", dict(paths=[project["root"]], dest=dest, s3=s3.options(s3_prefix),
                                               allow_plaintext=True))
    assert not allowed.get("failed") and allowed["path"].endswith(".tar.gz") and len(s3.keys(s3_prefix)) == 2
    local_only = run_module("config_backup", dict(paths=[project["root"]], dest=dest))
    assert not local_only.get("failed"), local_only.get("msg")


def test_a_missing_path_is_refused_before_anything_is_written(project, dest):
    missing = os.path.join(project["root"], "nope.env")
    result = run_module("config_backup", dict(paths=[project["root"], missing], dest=dest))
    assert result.get("failed") and missing in result["msg"] and not os.path.exists(dest)
    relative = run_module("config_backup", dict(paths=["srv/myapp"], dest=dest))
    assert relative.get("failed") and "absolute" in relative["msg"]
