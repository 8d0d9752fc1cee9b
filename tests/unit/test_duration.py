"""Durations as users write them (max_age, RPO)."""

import pytest

from ansible_collections.stackops.runbook.plugins.module_utils._module import parse_duration


@pytest.mark.parametrize("text,seconds", [("90", 90), (90, 90), ("90s", 90), ("30m", 1800), ("26h", 93600),
                                          ("7d", 604800), ("1w", 604800), ("1.5h", 5400), (" 2H ", 7200)])
def test_durations_parse_to_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "h", "-5m", "5 hours", "1y"])
def test_anything_else_is_refused_with_the_accepted_forms(text):
    with pytest.raises(ValueError, match="use seconds or a number with s, m, h, d or w"):
        parse_duration(text)
