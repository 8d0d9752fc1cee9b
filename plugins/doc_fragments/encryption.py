# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Client-side age encryption. DOCUMENTATION: the backup side (public keys only); IDENTITY: the restore side.
    DOCUMENTATION = r"""
options:
  age_recipients:
    description:
      - Encrypt the backup on this host with L(age,https://age-encryption.org) to these public keys (C(age1...) from
        C(age-keygen), or C(ssh-ed25519)/C(ssh-rsa) public keys) before it is written or leaves for O(s3); anyone
        holding the secret key of one of them can decrypt it. The host needs only the public keys.
      - The stream is compressed, then encrypted; the file gets the suffix C(.age) and its manifest records the
        recipients and the size and sha256 of both the stored (encrypted) file and the compressed plaintext. The
        check while writing reads the plaintext, so an encrypted backup is verified as fully as a plain one.
      - Needs the C(age) program (Debian's C(age) package; the prerequisites role installs it with
        C(prerequisites_age=true)). Single-file backups only (not pg_backup's C(format=directory)).
      - 'Recovery without this collection: C(age -d -i KEYFILE FILE | zstd -d | pg_restore -d DB) (or C(| tar -x)).'
    type: list
    elements: str
"""

    IDENTITY = r"""
options:
  age_identity_file:
    description:
      - A file on the managed host holding the age identity (secret key, from C(age-keygen)) that decrypts encrypted
        backups. Needed only for backups whose manifest says they are encrypted; without it (or O(age_identity))
        such a backup is refused before anything is touched.
      - Mutually exclusive with O(age_identity).
    type: path
  age_identity:
    description:
      - The age identity itself (the C(AGE-SECRET-KEY-1...) line), for example from Ansible Vault. It reaches the
        C(age) program through a pipe, never a command line or a file, and is never logged.
      - Mutually exclusive with O(age_identity_file).
    type: str
"""
