# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Which backup to read, and where: shared by the modules that restore backups.
    DOCUMENTATION = r"""
options:
  backup:
    description:
      - C(latest) (of O(database)), a backup name such as C(app_20261122T030000Z), the absolute path of a backup
        file, or an S3 key under O(s3.prefix) (a key outside it is refused).
    type: str
    default: latest
  path:
    description:
      - Directory of the backups (the O(stackops.runbook.pg_backup#module:dest) of pg_backup).
      - Mutually exclusive with O(s3); neither is needed when O(backup) is an absolute file path.
    type: path
"""
