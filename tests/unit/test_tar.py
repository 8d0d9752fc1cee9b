"""Planning and extracting a config backup under a root (pure file logic on a temporary directory)."""

import hashlib
import io
import os
import tarfile

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils._tar import extract_files, plan_extraction, target_of


def test_paths_outside_the_root_are_refused():
    assert target_of("/restore", "/srv/app/.env") == "/restore/srv/app/.env"
    for bad in ("/../etc/passwd", "/srv/../../etc/shadow"):
        with pytest.raises(ValueError, match="outside the restore root"):
            target_of("/restore", bad)


def test_a_file_is_written_with_its_mode_and_then_seen_as_the_same(tmp_path):
    root = str(tmp_path)
    data = b"SECRET=1\n"
    entry = dict(path="/srv/app/.env", type="file", mode="0600", size=len(data), sha256=hashlib.sha256(data).hexdigest())
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("srv/app/.env")
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
    assert plan_extraction([entry], root) == {"/srv/app/.env": "create"}
    written = extract_files(iter([archive.getvalue()]), root, {"/srv/app/.env": "create"})
    target = os.path.join(root, "srv/app/.env")
    assert written == ["/srv/app/.env"] and open(target, "rb").read() == data
    assert oct(os.stat(target).st_mode & 0o777) == "0o600"
    assert plan_extraction([entry], root) == {"/srv/app/.env": "same"}
    os.chmod(target, 0o644)
    assert plan_extraction([entry], root) == {"/srv/app/.env": "replace"}
    assert [f for f in os.listdir(os.path.dirname(target)) if ".stackops-" in f] == []
