"""The age stages with the real age program: what write_stream encrypts decrypts to the compressed
plaintext its facts describe; a failure mid-stream leaves no partial file and no age process."""

import hashlib
import os
import subprocess

import pytest
import zstandard

from ansible_collections.stackops.runbook.plugins.module_utils import _age
from ansible_collections.stackops.runbook.plugins.module_utils._backup import BackupError, write_stream


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("key") / "k")
    subprocess.run(["age-keygen", "-o", path], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", path], check=True, capture_output=True, text=True).stdout.strip()
    secret = [line for line in open(path).read().splitlines() if line.startswith("AGE-SECRET-KEY-1")][0]
    return path, recipient, secret


def test_an_encrypted_stream_decrypts_to_the_plaintext_its_facts_describe(tmp_path, key):
    path, recipient, secret = key
    data = [os.urandom(300000) + b"x" * 700000 for _piece in range(5)]
    partial = str(tmp_path / "b.partial")
    facts = write_stream(iter(data), partial, "zstd", 3, recipients=[recipient])
    stored = open(partial, "rb").read()
    assert stored.startswith(b"age-encryption.org/v1\n")
    assert (facts["size"], facts["sha256"]) == (len(stored), hashlib.sha256(stored).hexdigest())
    for identity in (_age.Identity(text=secret), _age.Identity(path=path)):
        plain = b"".join(_age.decrypted_chunks(iter([stored[:1000], stored[1000:]]), identity))
        assert hashlib.sha256(plain).hexdigest() == facts["encryption"]["plaintext_sha256"]
        assert zstandard.ZstdDecompressor().decompressobj().decompress(plain) == b"".join(data)


def test_a_failure_mid_stream_leaves_no_partial_and_no_age_process(tmp_path, key):
    def chunks():
        yield b"a" * 100000
        raise BackupError("the dump died")

    partial = str(tmp_path / "b.partial")
    with pytest.raises(BackupError, match="the dump died"):
        write_stream(chunks(), partial, "zstd", 3, recipients=[key[1]])
    assert os.listdir(str(tmp_path)) == []
    assert subprocess.run(["pgrep", "-x", "age"], capture_output=True, check=False).returncode == 1


def test_a_damaged_file_and_a_wrong_key_are_told_apart(tmp_path, key):
    partial = str(tmp_path / "b.partial")
    write_stream(iter([b"data" * 1000]), partial, "none", None, recipients=[key[1]])
    stored = bytearray(open(partial, "rb").read())
    other = str(tmp_path / "other")
    subprocess.run(["age-keygen", "-o", other], check=True, capture_output=True)
    with pytest.raises(_age.AgeError, match="other recipients"):
        b"".join(_age.decrypted_chunks(iter([bytes(stored)]), _age.Identity(path=other)))
    stored[-5] ^= 0xFF
    with pytest.raises(_age.AgeError, match="does not decrypt"):
        b"".join(_age.decrypted_chunks(iter([bytes(stored)]), _age.Identity(path=key[0])))


def test_recipients_and_identities_are_checked_without_echoing_a_secret():
    assert _age.recipients_error(["age1" + "q" * 58]) is None
    assert "not an age public key" in _age.recipients_error(["age1short"])
    with pytest.raises(_age.AgeError) as caught:
        _age.Identity.from_params(dict(age_identity="hunter2-secret"))
    assert "hunter2" not in str(caught.value)
