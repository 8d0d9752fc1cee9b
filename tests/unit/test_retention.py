"""Retention: which backups keep_days, keep_last and the grandfather-father-son rules let go of, and why each
survivor stays."""

import datetime

from ansible_collections.stackops.runbook.plugins.module_utils._storage import (
    BackupEntry,
    retention_plan,
)

NOW = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.timezone.utc)


def entries(*ages_days, verified=True):
    return [BackupEntry("app_%d" % age, NOW - datetime.timedelta(days=age), {"verified": verified}, "/x/%d" % age)
            for age in ages_days]


def select_for_pruning(entries, keep_days=None, keep_last=None, now=None):
    """What retention_plan removes, each with the reason."""
    return retention_plan(entries, dict(keep_days=keep_days, keep_last=keep_last), now)[1]


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


# ---------------------------------------------------------------- grandfather-father-son over a year

def nightly(days, start=NOW, verified=True):
    """One backup a night at 03:00 UTC for ``days`` nights, newest first."""
    return [BackupEntry("app_%03d" % age, start - datetime.timedelta(days=age), {"verified": verified}, "/x/%d" % age)
            for age in range(days)]


def test_a_year_of_nightly_backups_keeps_7_days_4_weeks_12_months():
    backups = nightly(366)
    kept, pruned = retention_plan(backups, dict(keep_daily=7, keep_weekly=4, keep_monthly=12), now=NOW)
    assert len(kept) + len(pruned) == 366
    names = [e.name for e, _why in kept]
    # the 7 newest nights; then the newest of each of 4 weeks and 12 months (some are the same backup)
    assert names[:7] == ["app_%03d" % age for age in range(7)]
    days = {e.when.strftime("%Y-%m-%d") for e, _why in kept}
    months = {e.when.strftime("%Y-%m") for e, _why in kept}
    weeks = {"%d-W%02d" % e.when.isocalendar()[:2] for e, _why in kept}
    assert len(months) == 12 and len(weeks) >= 4 and len(days) == len(kept)
    # the monthly ones are the last night of each month (the newest backup the month has)
    for entry, why in kept:
        if any(w.startswith("keep_monthly") for w in why) and entry.when.month != NOW.month:
            assert (entry.when + datetime.timedelta(days=1)).month != entry.when.month
    assert 12 <= len(kept) <= 7 + 4 + 12
    # nothing older than 12 months stays, and every pruned one says which rules did not keep it
    oldest_kept = min(e.when for e, _why in kept)
    assert oldest_kept > NOW - datetime.timedelta(days=366)
    assert all("not the newest of one of the 12 newest months" in reason for _e, reason in pruned)


def test_every_survivor_says_which_rule_keeps_it():
    kept, _pruned = retention_plan(nightly(60), dict(keep_last=2, keep_weekly=2, keep_monthly=3), now=NOW)
    why = {e.name: reasons for e, reasons in kept}
    assert why["app_000"] == ["the newest verified backup", "keep_last: among the newest 2",
                              "keep_weekly: the newest of week 2026-W47", "keep_monthly: the newest of month 2026-11"]
    assert why["app_001"] == ["keep_last: among the newest 2"]
    assert all(reasons for reasons in why.values())


def test_gfs_buckets_count_only_periods_that_have_backups():
    # backups only every 10 days: keep_daily=3 keeps three backups, not three calendar days
    backups = [e for e in nightly(100) if int(e.name[4:]) % 10 == 0]
    kept, _pruned = select_gfs(backups, keep_daily=3)
    assert [e.name for e in kept] == ["app_000", "app_010", "app_020"]


def test_gfs_never_prunes_the_newest_verified_backup_nor_this_runs():
    backups = nightly(10, verified=False) + [BackupEntry("app_old", NOW - datetime.timedelta(days=400),
                                                         {"verified": True}, "/x/old")]
    kept, pruned = select_gfs(backups, keep_daily=2, keep=("app_005",))
    assert {e.name for e in kept} == {"app_000", "app_001", "app_005", "app_old"}
    assert len(pruned) == 7


def test_backups_dated_in_the_future_are_neither_counted_nor_pruned():
    future = BackupEntry("app_future", NOW + datetime.timedelta(days=3), {"verified": True}, "/x/f")
    kept, pruned = select_gfs(nightly(5) + [future], keep_daily=2)
    assert "app_future" not in {e.name for e in kept} | {e.name for e, _r in pruned}
    assert [e.name for e in kept] == ["app_000", "app_001"]


def select_gfs(entries, keep=(), **rules):
    kept, pruned = retention_plan(entries, rules, now=NOW, keep=keep)
    return [e for e, _why in kept], pruned
