"""The seekable copy a parallel restore of the default backup runs on: filled in the same pass that checks
the backup (the backup is read once), kept only when the backup checks out, and given up - the restore
then streams, with a warning - when the disk fills while it is written."""

import hashlib
import os

import pytest
import zstandard

from ansible_collections.stackops.runbook.plugins.module_utils import _backups, _restore
from ansible_collections.stackops.runbook.plugins.module_utils._runner import LocalRunner
from ansible_collections.stackops.runbook.plugins.module_utils._storage import LocalStorage

NAME = "app_20261128T030000Z"
# a few MB of varied bytes: more pieces than the write-behind queue holds
PLAIN = b"".join(hashlib.sha256(b"%d" % i).hexdigest().encode() * 3 for i in range(40000))


class CountingStorage(LocalStorage):
    """A local storage that counts how often a backup's file is opened."""

    opened = 0

    def open_chunks(self, file_name):
        CountingStorage.opened += 1
        return super().open_chunks(file_name)


def make_backup(directory):
    data = zstandard.ZstdCompressor(level=1).compress(PLAIN)
    with open(os.path.join(directory, NAME + ".dump.zst"), "wb") as fh:
        fh.write(data)
    return dict(name=NAME, file=NAME + ".dump.zst", format="custom", compression="zstd", size=len(data),
                sha256=hashlib.sha256(data).hexdigest(), uncompressed_size=len(PLAIN))


def test_the_copy_is_filled_while_the_backup_is_checked_reading_it_once(tmp_path):
    storage = CountingStorage(str(tmp_path))
    manifest = make_backup(str(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    seekable = _restore.SeekableArchive(LocalRunner(), manifest, str(work))
    CountingStorage.opened = 0
    _backups.checked_copy(storage, manifest, str(work), seekable=seekable)
    assert CountingStorage.opened == 1
    assert seekable.ready and seekable.make(storage) and CountingStorage.opened == 1
    with open(seekable.path, "rb") as fh:
        assert fh.read() == PLAIN
    assert oct(os.stat(seekable.path).st_mode & 0o777) == "0o600"
    seekable.remove()
    assert os.listdir(work) == []


def test_a_damaged_backup_leaves_no_copy(tmp_path):
    storage = LocalStorage(str(tmp_path))
    manifest = make_backup(str(tmp_path))
    with open(os.path.join(str(tmp_path), manifest["file"]), "r+b") as fh:
        fh.seek(manifest["size"] // 2)
        fh.write(b"\0" * 64)
    work = tmp_path / "work"
    work.mkdir()
    seekable = _restore.SeekableArchive(LocalRunner(), manifest, str(work))
    with pytest.raises(_backups.DamagedBackup, match="nothing was changed"):
        _backups.checked_copy(storage, manifest, str(work), seekable=seekable)
    assert not seekable.ready and os.listdir(work) == []


def test_a_disk_that_fills_while_the_copy_is_written_gives_it_up_and_says_so(tmp_path, monkeypatch):
    storage = LocalStorage(str(tmp_path))
    manifest = make_backup(str(tmp_path))
    work = tmp_path / "work"
    work.mkdir()
    seekable = _restore.SeekableArchive(LocalRunner(), manifest, str(work))
    written = []

    def disk_full_after_a_piece(data):
        if written:
            raise OSError(28, "No space left on device")
        written.append(len(data))

    real_open = seekable.open

    def open_then_fill():
        opened = real_open()
        if opened:
            seekable._out.close()
            seekable._out = _restore.WriteBehind(disk_full_after_a_piece)
        return opened

    monkeypatch.setattr(seekable, "open", open_then_fill)
    _backups.checked_copy(storage, manifest, str(work), seekable=seekable)  # the backup itself checks out
    assert not seekable.ready and "had no room for a seekable copy" in seekable.no_room
    assert str(work) in seekable.no_room and os.listdir(work) == []
    assert seekable.make(storage) is False  # the restore streams instead


def test_write_behind_raises_what_its_thread_met():
    def broken(_data):
        raise OSError(5, "Input/output error")

    out = _restore.WriteBehind(broken)
    out.write(b"x")
    with pytest.raises(OSError, match="Input/output error"):
        out.close()
