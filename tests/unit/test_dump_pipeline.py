"""The dump pipeline's own checks, on real (tiny) processes: an empty dump or one without its
completion line never becomes a backup, and its partial file is gone."""

import os

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils import _dump
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError, LocalRunner
from ansible_collections.stackops.runbook.plugins.module_utils._storage import LocalStorage


def test_an_empty_dump_fails_and_leaves_no_partial_file(tmp_path):
    partial = str(tmp_path / "app_20261122T030000Z.dump.zst.partial")
    with pytest.raises(_dump.DumpError, match="produced an empty dump"):
        _dump.dump_to_file(LocalRunner(), ["true"], partial, "custom", "zstd", 3)
    assert os.listdir(tmp_path) == []


def test_a_plain_dump_without_its_completion_line_fails(tmp_path):
    partial = str(tmp_path / "app_20261122T030000Z.sql.gz.partial")
    with pytest.raises(_dump.DumpError, match="ends without its completion line"):
        _dump.dump_to_file(LocalRunner(), ["echo", "CREATE TABLE t ();"], partial, "plain", "gzip", 6)
    assert os.listdir(tmp_path) == []


def test_a_failing_dump_reports_its_exit_code_and_stderr(tmp_path):
    partial = str(tmp_path / "x.partial")
    with pytest.raises(CommandError, match="sh exited with code 3: pg_dump: error: boom"):
        _dump.dump_to_file(LocalRunner(), ["sh", "-c", "echo data; echo 'pg_dump: error: boom' >&2; exit 3"],
                           partial, "custom", "none", None)
    assert os.listdir(tmp_path) == []


def test_a_complete_plain_dump_is_written_hashed_and_verifiable(tmp_path):
    partial = str(tmp_path / "ok.partial")
    script = "printf 'SELECT 1;\\n-- PostgreSQL database dump complete\\n'"
    facts = _dump.dump_to_file(LocalRunner(), ["sh", "-c", script], partial, "plain", "zstd", 3)
    size, sha256, raw, verification = facts["size"], facts["sha256"], facts["uncompressed_size"], facts["verification"]
    assert verification == dict(method="sha256+decompress+completion-line")
    assert raw == len("SELECT 1;\n-- PostgreSQL database dump complete\n")
    assert size == os.path.getsize(partial)
    storage = LocalStorage(str(tmp_path))
    manifest = dict(file="ok.partial", format="plain", compression="zstd", size=size, sha256=sha256)
    found = _dump.verify_backup(storage, manifest, LocalRunner())
    assert found["method"] == "sha256+decompress+completion-line"
    with pytest.raises(_dump.DumpError, match="with sha256 0000"):
        _dump.verify_backup(storage, dict(manifest, sha256="0" * 64), LocalRunner())
    with open(partial, "r+b") as fh:
        fh.truncate(size - 3)
    with pytest.raises(_dump.DumpError, match="ok.partial is damaged: verification failed: the zstd stream is truncated"):
        _dump.verify_backup(storage, manifest)


def test_a_directory_backups_files_are_read_side_by_side_and_told_in_the_manifests_order(tmp_path, monkeypatch):
    """Each file's sha256 is taken in a thread of its own (two files read one after the other never meet at the
    barrier); what is wrong is told for the first damaged file the manifest lists, whichever was read first."""
    import threading

    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # threads are no more than the CPUs: two, wherever this runs

    from ansible_collections.stackops.runbook.plugins.module_utils._storage import StreamDigest, tree_digest

    os.mkdir(tmp_path / "app.dir")
    files = []
    for name, data in (("toc.dat", b"toc" * 1000), ("3001.dat", os.urandom(1 << 20)), ("3002.dat", b"rows\n" * 9)):
        (tmp_path / "app.dir" / name).write_bytes(data)
        digest = StreamDigest()
        list(digest.over([data]))
        size, sha256 = digest.found()
        files.append(dict(path=name, size=size, sha256=sha256))
    manifest = dict(file="app.dir", format="directory", compression="none", files=files, sha256=tree_digest(files))
    meeting = threading.Barrier(2, timeout=10)

    class MeetingStorage(LocalStorage):
        def open_chunks(self, file_name):
            if not file_name.endswith("toc.dat"):
                meeting.wait()  # the two data files are being read at once, or this raises BrokenBarrierError
            return super().open_chunks(file_name)

    storage = MeetingStorage(str(tmp_path))
    assert _dump.verify_backup(storage, manifest) == dict(method="sha256 of every file")
    (tmp_path / "app.dir" / "3002.dat").write_bytes(b"rows\n" * 8)
    (tmp_path / "app.dir" / "3001.dat").write_bytes(b"")
    meeting.reset()
    with pytest.raises(_dump.DumpError, match=r"app.dir/3001.dat is damaged: 0 bytes"):
        _dump.verify_backup(storage, manifest)
