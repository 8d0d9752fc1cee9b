"""The verdict over check results, the validation of checks, and the secrets they carry."""

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils import _probes as probes


def result(status, severity="critical"):
    return dict(status=status, severity=severity)


@pytest.mark.parametrize("results,expected", [
    ([result("pass"), result("pass")], "healthy"),
    ([result("pass"), result("warn")], "degraded"),
    ([result("pass"), result("fail", "warning")], "degraded"),
    ([result("warn"), result("fail")], "down"),
    ([], "healthy"),
])
def test_the_verdict_follows_the_worst_check_and_its_severity(results, expected):
    assert probes.verdict(results) == expected


def test_secrets_of_a_check_are_found_for_masking():
    check = dict(name="x", type="http", url="http://h/", password="p1", login_password="p2",
                 headers={"Authorization": "Bearer t0k3n", "Accept": "application/json"})
    assert sorted(probes.secrets_of(check)) == ["Bearer t0k3n", "p1", "p2"]


def test_json_expectations_take_one_known_comparison():
    with pytest.raises(probes.CheckInputError, match="wants one comparison of eq, ne"):
        probes.validate_check(dict(name="x", type="http", url="http://h/", json={"a": {"between": [1, 2]}}))
    probes.validate_check(dict(name="x", type="http", url="http://h/", json={"a": {"ge": 1}, "b": "ok"}))
