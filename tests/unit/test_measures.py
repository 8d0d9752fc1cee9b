"""Grading measured values against warning and critical limits, and the measurements' arithmetic."""

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils import _health, _measures


def test_a_value_at_a_limit_reaches_it_and_critical_wins_over_warning():
    check = dict(warning={"p95_ms": 500}, critical={"p95_ms": 2000})
    assert _measures.graded(check, "pass", "m", dict(p95_ms=499.9))[0] == "pass"
    assert _measures.graded(check, "pass", "m", dict(p95_ms=500))[0] == "warn"
    status, message, _details = _measures.graded(check, "pass", "m", dict(p95_ms=2000.0))
    assert status == "fail" and message == "p95_ms 2000.0 (critical at 2000); m"
    assert _measures.graded(check, "fail", "down", dict(p95_ms=9999))[:2] == ("fail", "down")
    assert _measures.graded(dict(warning={"memory_percent": 80}), "pass", "m", {})[0] == "pass"  # not measured


def test_limits_are_checked_against_what_the_type_measures():
    _measures.validate_limits(dict(name="c", type="redis", warning={"memory_percent": 80}))
    with pytest.raises(_measures.LimitError, match="does not measure; it measures p50_ms"):
        _measures.validate_limits(dict(name="c", type="latency", critical={"cpu_percent": 1}))
    with pytest.raises(_measures.LimitError, match="must be a number"):
        _measures.validate_limits(dict(name="c", type="logs", warning={"matches": "many"}))
    with pytest.raises(_measures.LimitError, match="nothing with limits"):
        _measures.validate_limits(dict(name="c", type="tcp", warning={"p95_ms": 1}))


def test_percentiles_by_nearest_rank():
    values = list(range(1, 21))
    assert _measures.percentile(values, 0.95) == 19 and _measures.percentile(values, 0.5) == 10
    assert _measures.percentile([7], 0.95) == 7


def test_cpu_and_memory_as_docker_stats_shows_them():
    stats = dict(cpu_stats=dict(cpu_usage=dict(total_usage=3_000_000), system_cpu_usage=12_000_000, online_cpus=2),
                 precpu_stats=dict(cpu_usage=dict(total_usage=1_000_000), system_cpu_usage=8_000_000),
                 memory_stats=dict(usage=60 * 2 ** 20, limit=100 * 2 ** 20, stats=dict(inactive_file=10 * 2 ** 20)))
    assert _measures.cpu_percent(stats) == 100.0  # half of all CPU time on a 2-CPU host: one core
    assert _measures.memory_figures(stats) == (50 * 2 ** 20, 50.0)
    assert _measures.cpu_percent(dict(cpu_stats={}, precpu_stats={})) == 0.0


def test_default_limits_apply_only_to_checks_without_their_own():
    limits = {"latency": {"warning": {"p95_ms": 500}}}
    own = dict(name="a", type="latency", url="http://x", critical={"p95_ms": 100})
    assert _health.with_default_limits(own, limits) == own
    plain = _health.with_default_limits(dict(name="b", type="latency", url="http://x"), limits)
    assert plain["warning"] == {"p95_ms": 500} and "critical" not in plain
    assert _health.with_default_limits(dict(name="c", type="http"), limits) == dict(name="c", type="http")
