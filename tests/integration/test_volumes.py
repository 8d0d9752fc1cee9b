"""volume_backup and volume_restore against a real docker engine: a volume with nested, binary, empty and
symlinked entries is archived, verified, pruned, copied offsite and restored exactly; damaged backups and
live volumes are refused without a change."""

import json
import os
import subprocess
import uuid

import pytest

from conftest import TEST_LABEL, postgres_image, run_module

FILL = ("mkdir -p /data/uploads/2026/11 /data/empty && head -c 300000 /dev/urandom > /data/uploads/2026/11/photo.bin "
        "&& echo hello > /data/uploads/readme.txt && ln -s readme.txt /data/uploads/link "
        "&& chmod 0640 /data/uploads/readme.txt && for i in $(seq 1 200); do echo $i > /data/uploads/f$i; done")
# every entry with its type, mode, size and link target, and a checksum of every regular file
LISTING = ("cd /volume && find . -printf '%y %m %s %p %l\\n' | sort && "
           "find . -type f -exec sha256sum {} + | sort -k 2")


def docker(*argv, check=True):
    return subprocess.run(["docker"] + list(argv), capture_output=True, text=True, check=check).stdout


@pytest.fixture
def volume():
    name = "stackops-test-vol-" + uuid.uuid4().hex[:8]
    docker("volume", "create", "--label", TEST_LABEL + "=1", name)
    docker("run", "--rm", "--label", TEST_LABEL + "=1", "-v", name + ":/data", "--entrypoint", "sh", postgres_image(),
           "-c", FILL)
    yield name
    docker("volume", "rm", "-f", name, check=False)


def listing(name):
    return docker("run", "--rm", "--label", TEST_LABEL + "=1", "-v", name + ":/volume:ro", "--entrypoint", "sh",
                  postgres_image(), "-c", LISTING)


def backup(volume, dest, **extra):
    return run_module("volume_backup", dict(volume=volume, dest=dest, helper_image=postgres_image(), **extra))


def test_a_volume_backup_is_verified_described_and_restores_exactly(volume, dest):
    result = backup(volume, dest)
    assert not result.get("failed"), result.get("msg")
    manifest = result["manifest"]
    assert result["path"].endswith(".tar.gz") and os.path.getsize(result["path"]) == manifest["size"]
    assert manifest["kind"] == "volume" and manifest["volume"] == volume
    assert manifest["data_bytes"] >= 300000 + 6 and manifest["members"] >= 206
    assert oct(os.stat(result["path"]).st_mode & 0o777) == "0o600"
    assert not [f for f in os.listdir(dest) if f.endswith(".partial")]
    # no helper container of this volume is left behind (other suites may run helpers of their own meanwhile)
    assert docker("ps", "-aq", "--filter", "label=io.stackops.runbook.volume-helper", "--filter", "volume=" + volume) == ""

    target = volume + "-restored"
    try:
        restored = run_module("volume_restore", dict(volume=target, from_volume=volume, path=dest,
                                                     helper_image=postgres_image()))
        assert not restored.get("failed"), restored.get("msg")
        assert restored["restored"] and restored["members"] == manifest["members"]
        assert listing(target) == listing(volume)
    finally:
        docker("volume", "rm", "-f", target, check=False)


def test_restoring_over_an_existing_volume_needs_confirmation_and_replaces_its_content(volume, dest):
    made = backup(volume, dest, compression="zstd")
    assert made["path"].endswith(".tar.zst")
    before = listing(volume)
    docker("run", "--rm", "-v", volume + ":/data", "--entrypoint", "sh", postgres_image(), "-c",
           "rm -rf /data/uploads/2026 && echo stray > /data/stray.txt")
    refused = run_module("volume_restore", dict(volume=volume, path=dest, helper_image=postgres_image()))
    assert refused["failed"] and "Set confirm: %s" % volume in refused["msg"]
    assert "stray.txt" in listing(volume)
    done = run_module("volume_restore", dict(volume=volume, path=dest, confirm=volume, helper_image=postgres_image()))
    assert not done.get("failed"), done.get("msg")
    assert listing(volume) == before


def test_a_damaged_backup_or_a_running_user_changes_nothing(volume, dest):
    made = backup(volume, dest)
    with open(made["path"], "r+b") as fh:
        fh.seek(made["size"] // 2)
        fh.write(b"\0" * 64)
    before = listing(volume)
    damaged = run_module("volume_restore", dict(volume=volume, path=dest, confirm=volume, helper_image=postgres_image()))
    assert damaged["failed"] and "damaged" in damaged["msg"] and not damaged["restored"]
    assert listing(volume) == before

    backup(volume, dest)
    user = docker("run", "-d", "--label", TEST_LABEL + "=1", "-v", volume + ":/data", "--entrypoint", "sleep",
                  postgres_image(), "300").strip()
    try:
        busy = run_module("volume_restore", dict(volume=volume, path=dest, confirm=volume,
                                                 helper_image=postgres_image()))
        assert busy["failed"] and "in use by running containers" in busy["msg"]
        assert listing(volume) == before
    finally:
        docker("rm", "-f", user, check=False)


def test_volume_retention_and_the_offsite_copy(volume, dest, s3, s3_prefix):
    names = []
    for _attempt in range(3):
        result = backup(volume, dest, keep_last=2, keep_days=0, s3=s3.options(s3_prefix))
        assert not result.get("failed"), result.get("msg")
        names.append(result["manifest"]["name"])
    kept = sorted(f for f in os.listdir(dest) if f.endswith(".manifest.json"))
    assert kept == sorted(n + ".manifest.json" for n in names[1:])
    assert sorted(os.path.basename(k) for k in s3.keys(s3_prefix)) == sorted(
        [n + ".manifest.json" for n in names[1:]] + [n + ".tar.gz" for n in names[1:]])
    info = run_module("backup_info", dict(s3=s3.options(s3_prefix), verify=True))
    assert not info.get("failed"), info.get("msg")
    assert [v["name"] for v in info["verified"]] == [names[-1]]


def test_a_missing_volume_or_bad_input_is_refused_clearly(dest):
    missing = run_module("volume_backup", dict(volume="no-such-volume-" + uuid.uuid4().hex[:6], dest=dest,
                                               helper_image=postgres_image()))
    assert missing["failed"] and "there is no docker volume" in missing["msg"] and not os.path.exists(dest)
    bad = run_module("volume_backup", dict(volume="../etc", dest=dest))
    assert bad["failed"] and "volume='../etc' is not a docker volume name" in bad["msg"]
    level = run_module("volume_backup", dict(volume="x", dest=dest, compression="gzip", compression_level=42))
    assert level["failed"] and "compression_level" in level["msg"]
    assert json.dumps(level)  # results are plain JSON
