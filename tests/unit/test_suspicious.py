"""The security incident's log reading (lines counted by pattern and by client) and the choice of what the
firewall may block (never loopback or the operator's own address)."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.stackops.runbook.plugins.filter.runbook import firewall_blocks
from ansible_collections.stackops.runbook.plugins.module_utils._suspicious import (
    CLIENT_PATTERNS,
    SUSPICIOUS_PATTERNS,
    PatternError,
    SuspiciousLines,
    lines_of,
)

ACCESS = '%s - - [28/Nov/2026:09:52:24 +0000] "%s HTTP/1.1" %d 25 "-" "curl/7.88.1"'


def scanned(lines, source="proxy"):
    scan = SuspiciousLines(SUSPICIOUS_PATTERNS, CLIENT_PATTERNS)
    for line in lines:
        scan.feed(line, source)
    return scan


def test_access_log_lines_are_counted_by_status_and_by_client():
    lines = [ACCESS % ("203.0.113.7", "POST /api/login", 401)] * 30 + \
        [ACCESS % ("198.51.100.4", "GET /admin", 403)] * 2 + \
        [ACCESS % ("198.51.100.20", "GET /health", 200)] * 5 + \
        [ACCESS % ("198.51.100.9", "GET /../../etc/passwd", 404)]
    summary = scanned(lines).summary(top=20)
    assert summary["lines"] == 38 and summary["matched"] == 33
    assert summary["patterns"] == {"unauthorized": 30, "forbidden": 2, "failed": 0, "attack": 1}
    assert [c["client"] for c in summary["clients"]] == ["203.0.113.7", "198.51.100.4", "198.51.100.9"]
    assert summary["clients"][0] == dict(client="203.0.113.7", suspicious=30, lines=30, patterns={"unauthorized": 30})
    assert summary["sources"] == {"proxy": 33}
    # a client with only good lines is no offender; the status 401 inside a size or a path is no match
    assert scanned([ACCESS % ("198.51.100.20", "GET /items/401", 200)]).summary(top=5)["matched"] == 0


def test_clients_are_found_in_caddy_json_logs_and_application_messages():
    caddy = ('{"level":"info","logger":"http.log.access","request":{"remote_ip":"10.0.0.2","client_ip":"2001:db8::7",'
             '"method":"POST","uri":"/login"},"status":401}')
    app = "WARNING login failed for ops@example.com from 203.0.113.7"
    summary = scanned([caddy, app, "ERROR connection failed to db:5432"]).summary(top=5)
    assert {c["client"] for c in summary["clients"]} == {"2001:db8::7", "203.0.113.7"}
    assert summary["matched"] == 3  # the third names no client: counted, attributed to nobody


def test_top_offenders_are_the_most_suspicious_first_ties_by_address():
    lines = [ACCESS % ("203.0.113.%d" % n, "POST /login", 401) for n in (5, 4, 4, 6, 6)]
    assert [c["client"] for c in scanned(lines).summary(top=2)["clients"]] == ["203.0.113.4", "203.0.113.6"]


def test_bad_patterns_are_refused_naming_them():
    with pytest.raises(PatternError, match=r"suspicious_patterns.bad='\(' is not a regular expression"):
        SuspiciousLines({"bad": "("}, CLIENT_PATTERNS)
    with pytest.raises(PatternError, match="needs one group"):
        SuspiciousLines(SUSPICIOUS_PATTERNS, [r"^\S+"])


def test_lines_split_across_chunks_are_joined():
    assert list(lines_of([b"first li", b"ne\nsecond\n", b"thi", b"rd"])) == ["first line", "second", "third"]


def test_the_firewall_never_blocks_loopback_or_the_operator_and_says_why():
    result = firewall_blocks(["203.0.113.7", "203.0.113.7/32", "198.51.100.0/24", "127.0.0.1", "0.0.0.0/0",
                              "2001:db8::1", "192.0.2.10"], ["127.0.0.0/8", "::1/128", "192.0.2.10"])
    assert result["block"] == [dict(source="203.0.113.7", ip_version="ipv4"),
                               dict(source="198.51.100.0/24", ip_version="ipv4"),
                               dict(source="2001:db8::1", ip_version="ipv6")]
    assert [k["source"] for k in result["kept"]] == ["127.0.0.1", "0.0.0.0/0", "192.0.2.10"]
    assert "never blocked" in result["kept"][0]["why"]
    with pytest.raises(AnsibleFilterError, match=r"incident_block_ips: '203.0.113.300' is not an IP address"):
        firewall_blocks(["203.0.113.300"], [])
