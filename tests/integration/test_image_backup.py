"""image_backup and image_restore against a real docker engine: an image that exists nowhere else (built on the
server) is saved encrypted, removed, and loaded back with its tag from the backup; the serving release's
images are picked from compose_release's ledger."""

import io
import json
import os
import subprocess
import tarfile
import uuid

import pytest

from conftest import TEST_LABEL, run_module
from test_encryption import Key


def docker(*argv, check=True):
    return subprocess.run(["docker"] + list(argv), capture_output=True, text=True, check=check).stdout.strip()


@pytest.fixture
def tiny_image():
    """A one-file image made on this host (docker import), in no registry."""
    ref = "stackops-test-img-%s:1.0" % uuid.uuid4().hex[:8]
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        data = ("release 1.0 %s\n" % uuid.uuid4().hex).encode()
        info = tarfile.TarInfo("VERSION")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    subprocess.run(["docker", "import", "--change", "LABEL %s=1" % TEST_LABEL, "-", ref], input=payload.getvalue(),
                   check=True, capture_output=True)
    image_id = docker("image", "inspect", "-f", "{{.Id}}", ref)
    yield ref, image_id
    docker("rmi", "-f", ref, check=False)


def test_an_image_built_here_is_saved_encrypted_and_loaded_back_with_its_tag(tiny_image, dest, tmp_path):
    ref, image_id = tiny_image
    key = Key(str(tmp_path), "ops")
    made = run_module("image_backup", dict(images=[ref], dest=dest, age_recipients=[key.recipient]))
    assert not made.get("failed"), made.get("msg")
    assert made["path"].endswith(".tar.zst.age")
    assert made["manifest"]["images"][0]["id"] == image_id and ref in made["manifest"]["images"][0]["tags"]
    listed = subprocess.run(["sh", "-c", 'age -d -i "$1" "$2" | zstd -d | tar -t', "sh", key.path, made["path"]],
                            check=True, capture_output=True, text=True).stdout.split()
    assert "manifest.json" in listed

    docker("rmi", "-f", ref)
    args = dict(path=dest, age_identity_file=key.path)
    planned = run_module("image_restore", args, check_mode=True)
    assert planned["changed"] and planned["loaded"] == [image_id]
    assert docker("images", "-q", ref) == ""
    loaded = run_module("image_restore", args)
    assert not loaded.get("failed"), loaded.get("msg")
    assert loaded["loaded"] == [image_id]
    assert docker("image", "inspect", "-f", "{{.Id}}", ref) == image_id
    again = run_module("image_restore", args)
    assert not again["changed"] and again["loaded"] == []


def test_the_serving_release_is_read_from_the_ledger(tiny_image, dest, tmp_path):
    ref, image_id = tiny_image
    ledger = tmp_path / "releases.jsonl"
    good = dict(version="1.0", result="succeeded", services=["api"], images={"api": dict(ref=ref, id=image_id)})
    failed = dict(version="1.1", result="rolled_back", services=["api"], images={"api": dict(ref=ref, id="sha256:0")})
    ledger.write_text(json.dumps(good) + "\n" + json.dumps(failed) + "\n")
    made = run_module("image_backup", dict(release_ledger=str(ledger), dest=dest))
    assert not made.get("failed"), made.get("msg")
    assert made["manifest"]["release"] == "1.0"
    assert made["images"] == [dict(ref=ref, id=image_id, service="api")]

    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps(failed) + "\n")
    refused = run_module("image_backup", dict(release_ledger=str(empty), dest=str(tmp_path / "other")))
    assert refused.get("failed") and "no release that served healthy" in refused["msg"]
    assert not os.path.exists(str(tmp_path / "other"))
    missing = run_module("image_backup", dict(images=["stackops-test-img-nope:9"], dest=str(tmp_path / "other")))
    assert missing.get("failed") and "not on this host" in missing["msg"]
