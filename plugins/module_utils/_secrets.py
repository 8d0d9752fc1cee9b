# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

secret_rotate's plumbing: the version store on the host (current / pending / previous, like AWS Secrets
Manager's stages), generated values, fingerprints, the SCRAM-SHA-256 verifier computed on the client, and the
env-file and file targets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets as random

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._compose import env_file_text, read_env_file
from ansible_collections.stackops.runbook.plugins.module_utils._reports import replace_file

STAGES = ("current", "pending", "previous")
ALPHABETS = {
    "alnum": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "urlsafe": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    "hex": "0123456789abcdef",
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SecretError(RunbookError):
    """The rotation cannot go on; the message says why and what to do (never the value)."""


def fingerprint(value):
    """A short, stable hash to tell values apart in results and logs without showing them."""
    return hashlib.sha256(value.encode()).hexdigest()[:12] if value else None


def generate(length, alphabet):
    characters = ALPHABETS[alphabet]
    return "".join(random.choice(characters) for dummy in range(length))


def scram_verifier(password, iterations=4096, salt=None):
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677), computed here so that
    ``ALTER ROLE ... PASSWORD`` sends the verifier and the plaintext never reaches the server or its logs."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data):
        return base64.b64encode(data).decode()
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt), b64(stored_key), b64(server_key))


class VersionStore:
    """One secret's versions on the host: a 0700 directory with one 0600 file per stage. ``pending`` is written
    before anything changes, so a new value is never lost; ``previous`` stays for a rollback."""

    def __init__(self, state_dir, name):
        if not NAME_PATTERN.match(name or ""):
            raise SecretError("name=%r: use letters, digits, '.', '_' and '-' (it names the secret's state folder)"
                              % name)
        self.directory = os.path.join(state_dir, name)

    def get(self, stage):
        try:
            with open(os.path.join(self.directory, stage)) as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def has(self, stage):
        return os.path.exists(os.path.join(self.directory, stage))

    def rotated_at(self):
        """When the value in use was set (Unix seconds): the ``current`` version's time; None when it never was."""
        try:
            return os.path.getmtime(os.path.join(self.directory, "current"))
        except FileNotFoundError:
            return None

    def put(self, stage, value):
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        os.chmod(self.directory, 0o700)
        replace_file(os.path.join(self.directory, stage), value, mode=0o600)

    def drop(self, stage):
        try:
            os.unlink(os.path.join(self.directory, stage))
        except FileNotFoundError:
            pass

    def promote(self):
        """finish: previous <- current, current <- pending, no pending. Each write is atomic and the order keeps
        every value somewhere at every moment."""
        pending, current = self.get("pending"), self.get("current")
        if current is not None:
            self.put("previous", current)
        self.put("current", pending)
        self.drop("pending")

    def fingerprints(self):
        return {stage: fingerprint(self.get(stage)) for stage in STAGES}


def read_env_value(path, variable):
    values, _lines = read_env_file(path)
    return values.get(variable)


def write_env_value(path, variable, value):
    """Set ``variable`` in the env file, keeping every other line and the file's mode (0600 when created)."""
    if re.search(r"[\n\r]", value):
        raise SecretError("a value for %s in %s cannot hold a line break" % (variable, path))
    _values, lines = read_env_file(path)
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o600
    replace_file(path, env_file_text(lines, {variable: value}), mode=mode)


def read_file_value(path):
    try:
        with open(path) as fh:
            return fh.read().rstrip("\n")
    except FileNotFoundError:
        return None


def write_file_value(path, value):
    mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else 0o600
    replace_file(path, value + "\n", mode=mode)
