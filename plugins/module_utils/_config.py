# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

The config kind of the backup pipeline (``_backup``): files of the host - a compose project's compose
and env files, the proxy's config, the collection's own ledgers and drill logs - as one tar, each member
stored under its absolute path and described in the manifest (type, mode, owner, size, sha256), so a
restore onto a fresh server puts every file back where it was and can say beforehand what it changes.
"""

from __future__ import annotations

from ansible_collections.stackops.runbook.plugins.module_utils import _manifest as mf
from ansible_collections.stackops.runbook.plugins.module_utils._backup import BackupWriter, write_stream
from ansible_collections.stackops.runbook.plugins.module_utils._tar import TarCheck, file_tar_chunks, host_paths

DEFAULT_LABEL = "config"


def plaintext_offsite_error(params):
    """Config files hold secrets (``.env``): they leave the host encrypted, or only when the user says so."""
    if params.get("s3") and not params.get("age_recipients") and not params.get("allow_plaintext"):
        return ("config backups hold secrets (env files): set age_recipients to encrypt them before they go to s3, "
                "or allow_plaintext: true to send them unencrypted (nothing was written)")
    return None


class ConfigWriter(BackupWriter):
    """Host files as a compressed (optionally encrypted) tar, checked to its end marker while it is written."""

    kind = "config"
    tool = mf.CONFIG_TOOL

    def __init__(self, label, paths, exclude, compression, level, recipients=None):
        self.label, self.paths, self.exclude = label, list(paths), list(exclude or [])
        self.compression, self.level, self.recipients = compression, level, recipients

    def file_name(self, name):
        return mf.data_file_name(name, "tar", self.compression, encrypted=bool(self.recipients))

    def write(self, name, partial):
        entries = []
        check = TarCheck(self.compression)
        facts = write_stream(file_tar_chunks(host_paths(self.paths, self.exclude), entries), partial,
                             self.compression, self.level, check, self.recipients)
        return dict(facts, database=None, format="tar", compression=self.compression, compression_level=self.level,
                    verified=True, paths=self.paths, exclude=self.exclude, members=check.tar.members,
                    data_bytes=check.tar.bytes, entries=entries)
