"""A directory is copied into a container as a tar made while it is read, never whole in memory."""

import io
import os
import tarfile

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerError, tar_chunks


def test_the_chunks_are_a_tar_of_the_directory_under_its_new_name(tmp_path):
    folder = tmp_path / "app_20261122T030000Z.dir"
    folder.mkdir()
    (folder / "toc.dat").write_bytes(b"PGDMP" + os.urandom(1000))
    (folder / "3001.dat.gz").write_bytes(os.urandom(3 * 1024 * 1024))
    chunks = list(tar_chunks(str(folder), "stackops-restore-x", chunk_size=65536))
    assert max(len(c) for c in chunks) <= 65536 and len(chunks) > 40
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
        names = sorted(tar.getnames())
        assert names == ["stackops-restore-x", "stackops-restore-x/3001.dat.gz", "stackops-restore-x/toc.dat"]
        assert tar.extractfile("stackops-restore-x/3001.dat.gz").read() == (folder / "3001.dat.gz").read_bytes()


def test_a_directory_that_cannot_be_read_fails_clearly(tmp_path):
    with pytest.raises(ContainerError, match="cannot read .*no-such-folder"):
        list(tar_chunks(str(tmp_path / "no-such-folder"), "x"))


def test_a_reader_that_stops_early_does_not_leave_the_writer_blocked(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "data").write_bytes(os.urandom(8 * 1024 * 1024))
    chunks = tar_chunks(str(folder), "big", chunk_size=4096)
    next(chunks)
    chunks.close()  # the read end closes: the writer gets EPIPE and ends
