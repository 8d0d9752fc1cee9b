"""The anomaly guard's comparison of two manifests (pure logic)."""

from ansible_collections.stackops.runbook.plugins.module_utils._anomaly import (
    anomaly_facts,
    baseline,
    find_anomalies,
)
from ansible_collections.stackops.runbook.plugins.module_utils._storage import BackupEntry

PARAMS = dict(anomaly_threshold=0.5, anomaly_ignore_tables=[], anomaly_acknowledge=False)


def manifest(name, size=1000, **counts):
    return dict(name=name, size=size, uncompressed_size=size * 4, verified=True,
                row_counts={"public." + t: n for t, n in counts.items()})


def test_nothing_to_compare_with_is_normal():
    assert find_anomalies(None, manifest("b", users=0), PARAMS) == []


def test_a_table_gone_a_table_emptied_and_a_shrunk_dump_are_each_named():
    found = find_anomalies(manifest("a", users=100, orders=10), manifest("b", size=400, users=100), PARAMS)
    assert found == ["table public.orders is gone (it had 10 rows in a)",
                     "the dump shrank by 60% (4000 bytes in a, 1600 now)"]
    assert find_anomalies(manifest("a", users=100), manifest("b", users=49), PARAMS) == [
        "table public.users lost 51% of its rows (100 in a, 49 now)"]


def test_losses_up_to_the_threshold_and_growth_are_normal():
    assert find_anomalies(manifest("a", users=100), manifest("b", users=50), PARAMS) == []
    assert find_anomalies(manifest("a", users=0), manifest("b", users=0), PARAMS) == []
    assert find_anomalies(manifest("a", users=10), manifest("b", size=5000, users=1000), PARAMS) == []
    assert find_anomalies(manifest("a", users=100), manifest("b", users=80), dict(PARAMS, anomaly_threshold=0.1))


def test_ignored_tables_match_qualified_or_bare_names():
    before, after = manifest("a", sessions=100, api_tokens=5), manifest("b", sessions=0)
    assert find_anomalies(before, after, dict(PARAMS, anomaly_ignore_tables=["public.sessions", "*_tokens"])) == []
    assert len(find_anomalies(before, after, dict(PARAMS, anomaly_ignore_tables=["sessions"]))) == 1


def test_the_baseline_is_the_newest_normal_backup():
    good = BackupEntry("a", None, dict(manifest("a"), anomalous=False), "x")
    wiped = BackupEntry("b", None, dict(manifest("b"), anomalous=True), "x")
    acknowledged = BackupEntry("c", None, dict(manifest("c"), anomalous=True, anomaly_acknowledged=True), "x")
    unverified = BackupEntry("d", None, dict(manifest("d"), verified=False), "x")
    assert baseline([good, wiped], "new")["name"] == "a"
    assert baseline([good, wiped, acknowledged, unverified], "new")["name"] == "c"
    assert baseline([good], "a") is None


def test_an_acknowledged_anomaly_is_marked_so():
    facts = anomaly_facts(manifest("a", users=10), manifest("b", users=0), dict(PARAMS, anomaly_acknowledge=True))
    assert facts["anomalous"] and facts["anomaly_acknowledged"] and facts["compared_with"] == "a"
    assert "anomaly_acknowledged" not in anomaly_facts(manifest("a", users=10), manifest("b", users=10), PARAMS)
