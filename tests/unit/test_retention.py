"""Retention: which backups keep_days and keep_last let go of."""

import datetime

from ansible_collections.stackops.runbook.plugins.module_utils._storage import BackupEntry, select_for_pruning

NOW = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.timezone.utc)


def entries(*ages_days, verified=True):
    return [BackupEntry("app_%d" % age, NOW - datetime.timedelta(days=age), {"verified": verified}, "/x/%d" % age)
            for age in ages_days]


def pruned_names(result):
    return sorted(entry.name for entry, _reason in result)


def test_nothing_is_pruned_without_a_retention_setting():
    assert select_for_pruning(entries(1, 10, 100), now=NOW) == []


def test_keep_days_prunes_what_is_older():
    assert pruned_names(select_for_pruning(entries(1, 6, 8, 30), keep_days=7, now=NOW)) == ["app_30", "app_8"]


def test_keep_last_prunes_beyond_the_newest_n():
    assert pruned_names(select_for_pruning(entries(1, 2, 3, 4), keep_last=2, now=NOW)) == ["app_3", "app_4"]


def test_keep_days_and_keep_last_together_keep_what_either_keeps():
    result = select_for_pruning(entries(1, 8, 9, 10), keep_days=7, keep_last=3, now=NOW)
    assert pruned_names(result) == ["app_10"]
    assert result[0][1] == "older than 7 days (10.0 days) and not among the newest 3"


def test_the_newest_verified_backup_is_never_pruned_even_when_all_are_expired():
    assert pruned_names(select_for_pruning(entries(30, 40, 50), keep_days=7, now=NOW)) == ["app_40", "app_50"]


def test_an_unverified_newest_backup_does_not_protect_itself_alone():
    backups = entries(40, 50) + entries(30, verified=False)
    # the newest *verified* one (40 days) is kept; the unverified newer one is not protected
    assert pruned_names(select_for_pruning(backups, keep_days=7, now=NOW)) == ["app_30", "app_50"]


def test_keep_last_zero_with_keep_days_still_keeps_the_newest_verified():
    assert pruned_names(select_for_pruning(entries(10, 20), keep_days=7, keep_last=0, now=NOW)) == ["app_20"]
