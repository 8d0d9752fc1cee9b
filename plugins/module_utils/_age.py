# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

Client-side encryption with age (https://age-encryption.org, the ``age`` program from the distribution's
packages): the encrypting stage of the backup pipeline and the decrypting reader of the restore side.

Why the ``age`` program and not a library: it is a Debian package (no PyPI on the managed host), it
streams in constant memory, and the files it writes are exactly what ``age -d`` reads when the collection
is gone. The recipients (public keys) go on its command line; an identity (secret key) never does: it
reaches ``age`` through an inherited pipe (``-i /dev/fd/N``), so it is in no argv, no file and no log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError

READ_SIZE = 1024 * 1024
# X25519 recipients (age1...) and the SSH public keys age also accepts
RECIPIENT = re.compile(r"^(age1[02-9ac-hj-np-z]{58}|ssh-(ed25519|rsa) AAAA[0-9A-Za-z+/=]+( .*)?)$")
IDENTITY_LINE = "AGE-SECRET-KEY-1"


class AgeError(RunbookError):
    """age is missing, refused a recipient or an identity, or a stream does not decrypt."""


def age_program():
    path = shutil.which("age")
    if path is None:
        raise AgeError("the age program is not installed on this host: install the age package (the prerequisites "
                       "role does with prerequisites_age: true)")
    return path


def recipients_error(recipients):
    """What is wrong with ``age_recipients`` (None when nothing is)."""
    bad = [r for r in recipients or [] if not RECIPIENT.match(r.strip())]
    if bad:
        return ("age_recipients holds %s, which is not an age public key (age1..., from age-keygen -y KEYFILE) "
                "nor an ssh-ed25519/ssh-rsa public key" % ", ".join(repr(b[:20]) for b in bad))
    return None


def recipients_argument_spec():
    """``age_recipients`` (see the stackops.runbook.encryption doc fragment)."""
    return dict(age_recipients=dict(type="list", elements="str"))


def recipients_options_error(params):
    """What is wrong with a backup module's ``age_recipients`` on this host (None when nothing is)."""
    if not params.get("age_recipients"):
        return None
    if params.get("format") == "directory":
        return "age_recipients needs a single-file backup: use format=custom (or plain), not format=directory"
    problem = recipients_error(params["age_recipients"])
    if problem:
        return problem
    try:
        age_program()
    except AgeError as exc:
        return "age_recipients is set but %s" % exc
    return None


def identity_argument_spec():
    """``age_identity_file`` and ``age_identity`` (see the stackops.runbook.encryption doc fragment)."""
    return dict(age_identity_file=dict(type="path"), age_identity=dict(type="str", no_log=True))


class Identity:
    """The secret key of a restore: a file on the managed host, or the key's text (held in memory only)."""

    def __init__(self, path=None, text=None):
        self.path, self.text = path, text

    @classmethod
    def from_params(cls, params):
        """The identity the module's parameters give, or None; raises AgeError naming the bad option."""
        if params.get("age_identity_file") and params.get("age_identity"):
            raise AgeError("give age_identity_file or age_identity, not both")
        if params.get("age_identity"):
            if IDENTITY_LINE not in params["age_identity"].upper():
                raise AgeError("age_identity is not an age identity (the AGE-SECRET-KEY-1... line age-keygen writes)")
            return cls(text=params["age_identity"])
        path = params.get("age_identity_file")
        if path:
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                raise AgeError("age_identity_file %s is not a readable file on this host" % path)
            return cls(path=path)
        return None


def identity_options_error(params):
    """What is wrong with ``age_identity_file``/``age_identity`` (None when nothing is)."""
    try:
        Identity.from_params(params)
    except AgeError as exc:
        return str(exc)
    return None


def encryption_facts(recipients, plaintext_size, plaintext_sha256):
    """The manifest's ``encryption``: how to read the stored file back."""
    return dict(method="age", recipients=list(recipients), plaintext_size=plaintext_size,
                plaintext_sha256=plaintext_sha256)


def is_encrypted(manifest):
    return bool((manifest or {}).get("encryption"))


def _stderr_of(proc):
    try:
        return proc.stderr.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return ""


class Encryptor:
    """A writer (``write``/``close``) whose bytes go through ``age -r ...`` into ``sink``; ``abort`` stops it."""

    def __init__(self, recipients, sink):
        argv = [age_program()]
        for recipient in recipients:
            argv += ["-r", recipient.strip()]
        self.sink = sink
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.error = None
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        try:
            for chunk in iter(lambda: self.proc.stdout.read(READ_SIZE), b""):
                self.sink.write(chunk)
        except BaseException as exc:  # handed to the writer's thread by write/close
            self.error = exc
            self.proc.kill()

    def _raise(self):
        if self.error is not None:
            raise self.error
        self.proc.wait()
        raise AgeError("age stopped encrypting (exit %s): %s" % (self.proc.returncode, _stderr_of(self.proc)))

    def write(self, data):
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ValueError):
            self._raise()
        return len(data)

    def close(self):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.thread.join()
        if self.error is not None or self.proc.wait() != 0:
            self._raise()

    def abort(self):
        self.proc.kill()
        self.thread.join()
        self.proc.wait()


def decrypted_chunks(chunks, identity, what="the backup"):
    """The plaintext of the age file ``chunks``, decrypted with ``identity`` (an Identity) as it is read.
    Raises AgeError when the identity does not fit or the file is damaged."""
    argv = [age_program(), "--decrypt"]
    key_reader = None
    if identity.text is not None:
        key_reader, key_writer = os.pipe()
        # the key is far smaller than a pipe's buffer: written whole before age starts, then closed
        with os.fdopen(key_writer, "wb") as fh:
            fh.write(identity.text.encode("utf-8") + b"\n")
        argv += ["-i", "/dev/fd/%d" % key_reader]
    else:
        argv += ["-i", identity.path]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(key_reader,) if key_reader is not None else ())
    finally:
        if key_reader is not None:
            os.close(key_reader)
    failure = []

    def feed():
        try:
            for chunk in chunks:
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # age stopped: its exit code and message say why
        except BaseException as exc:
            failure.append(exc)
            proc.kill()
        finally:
            try:
                proc.stdin.close()
            except BrokenPipeError:
                pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    finished = False
    try:
        yield from iter(lambda: proc.stdout.read(READ_SIZE), b"")
        feeder.join()
        if failure:
            raise failure[0]
        if proc.wait() != 0:
            message = _stderr_of(proc)
            if "no identity matched" in message:
                raise AgeError("%s is encrypted to other recipients than the identity given (age: %s); give the "
                               "identity of one of the manifest's recipients" % (what, message))
            raise AgeError("%s does not decrypt (age: %s)" % (what, message))
        finished = True
    finally:
        if not finished:
            proc.kill()
            feeder.join()
            proc.wait()
