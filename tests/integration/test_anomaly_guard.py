"""The anomaly guard on a real database and the S3 API: a wiped table makes the next backup anomalous, it is
kept and marked, and retention (keep_last 1, keep_days 0) deletes none of the good backups, locally or in
S3, until the data is back or the change is acknowledged. Tables that shrink by design are ignored."""

import json
import os

import pytest

from conftest import exact_counts, run_module


@pytest.fixture
def shop(host_pg):
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS shop")
    host_pg.psql("postgres", "CREATE DATABASE shop TEMPLATE app")
    yield host_pg
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS shop")


def backup(pg, dest, s3, prefix, **extra):
    args = dict(pg.connection(), database="shop", dest=dest, keep_last=1, keep_days=0, s3=s3.options(prefix))
    args.update(extra)
    return run_module("pg_backup", args)


def names_in(dest, s3, prefix):
    local = sorted(f.split(".")[0] for f in os.listdir(dest) if f.endswith(".manifest.json"))
    remote = sorted(k.rsplit("/", 1)[-1].split(".")[0] for k in s3.keys(prefix) if k.endswith(".manifest.json"))
    return local, remote


def test_a_wiped_table_holds_retention_until_the_data_is_back(shop, dest, s3, s3_prefix):
    good = backup(shop, dest, s3, s3_prefix)
    assert not good.get("failed") and good["anomalous"] is False and good["anomalies"] == []
    rows = exact_counts(shop.psql, "shop")["public.orders"]
    assert rows > 0

    shop.psql("shop", "DELETE FROM orders")
    wiped = backup(shop, dest, s3, s3_prefix)
    assert not wiped.get("failed"), wiped.get("msg")
    assert wiped["anomalous"] is True and wiped["manifest"]["anomalous"] is True
    assert any("public.orders lost 100%" in a for a in wiped["anomalies"]), wiped["anomalies"]
    assert wiped["manifest"]["compared_with"] == good["manifest"]["name"]
    assert wiped["pruned"] == [] and "retention deleted nothing" in wiped["retention_held"]
    assert "retention deleted nothing" in json.dumps(wiped.get("warnings"))
    both = sorted([good["manifest"]["name"], wiped["manifest"]["name"]])
    assert names_in(dest, s3, s3_prefix) == (both, both)

    # the next night is compared with the last normal backup: still anomalous, still nothing pruned
    again = backup(shop, dest, s3, s3_prefix, on_anomaly="fail")
    assert again.get("failed") and "looks like lost data" in again["msg"] and "is complete and verified" in again["msg"]
    assert again["manifest"]["compared_with"] == good["manifest"]["name"]
    assert good["manifest"]["name"] in names_in(dest, s3, s3_prefix)[0]
    assert good["manifest"]["name"] in names_in(dest, s3, s3_prefix)[1]

    # the data is back: a normal backup, and retention keeps only it
    shop.psql("postgres", "DROP DATABASE shop")
    shop.psql("postgres", "CREATE DATABASE shop TEMPLATE app")
    restored = backup(shop, dest, s3, s3_prefix)
    assert not restored.get("failed") and restored["anomalous"] is False
    assert names_in(dest, s3, s3_prefix) == ([restored["manifest"]["name"]], [restored["manifest"]["name"]])


def test_an_acknowledged_change_lets_retention_go_on(shop, dest, s3, s3_prefix):
    good = backup(shop, dest, s3, s3_prefix)
    shop.psql("shop", "DELETE FROM orders")
    acknowledged = backup(shop, dest, s3, s3_prefix, anomaly_acknowledge=True)
    assert acknowledged["anomalous"] is True and acknowledged["manifest"]["anomaly_acknowledged"] is True
    assert [p["name"] for p in acknowledged["pruned"]] == [good["manifest"]["name"]] * 2
    # the acknowledged backup is the new baseline: the next one is normal
    after = backup(shop, dest, s3, s3_prefix)
    assert after["anomalous"] is False and after["manifest"]["compared_with"] == acknowledged["manifest"]["name"]


def test_tables_that_shrink_by_design_are_ignored(shop, dest, s3, s3_prefix):
    backup(shop, dest, s3, s3_prefix)
    shop.psql("shop", "DELETE FROM refresh_tokens")
    ignored = backup(shop, dest, s3, s3_prefix, anomaly_ignore_tables=["*_tokens"])
    assert not ignored.get("failed") and ignored["anomalous"] is False, ignored["anomalies"]
    shop.psql("shop", "DROP TABLE security_events")
    gone = backup(shop, dest, s3, s3_prefix, anomaly_ignore_tables=["public.refresh_tokens"])
    assert gone["anomalous"] is True
    assert [a for a in gone["anomalies"] if a.startswith("table public.security_events is gone")]


def test_a_bad_threshold_is_refused_before_anything_is_done(shop, dest, s3, s3_prefix):
    bad = backup(shop, dest, s3, s3_prefix, anomaly_threshold=1.5)
    assert bad.get("failed") and "anomaly_threshold" in bad["msg"] and not os.path.exists(dest)
