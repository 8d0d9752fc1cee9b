# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Which older backups a backup run removes: shared by every module that makes backups.
    DOCUMENTATION = r"""
options:
  keep_days:
    description:
      - Keep the backups younger than this many days.
      - A backup stays while any of O(keep_days), O(keep_last), O(keep_daily), O(keep_weekly) and O(keep_monthly)
        keeps it; with none of them set nothing is removed. The newest verified backup always stays, whatever its
        age, and only backups this collection wrote (its naming and manifest) of the same series are ever touched,
        locally and in O(s3).
    type: int
  keep_last:
    description: Keep the newest this many backups, whatever their age.
    type: int
  keep_daily:
    description:
      - Keep the newest backup of each of the newest this many days that have a backup (days in UTC, like the
        backup names).
    type: int
  keep_weekly:
    description: Keep the newest backup of each of the newest this many ISO weeks that have a backup.
    type: int
  keep_monthly:
    description:
      - Keep the newest backup of each of the newest this many months that have a backup, such as C(keep_daily=7),
        C(keep_weekly=4), C(keep_monthly=12) for a year of history in 23 backups.
    type: int
"""
