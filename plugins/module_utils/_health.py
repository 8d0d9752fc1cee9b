# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

health_probe's work, shared by the module (on a managed host) and its action plugin (which runs the checks
in the controller's own process when the task runs there, without starting a module)."""

from __future__ import annotations

import concurrent.futures
import time

from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_argument_spec
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils import _measures as measures
from ansible_collections.stackops.runbook.plugins.module_utils import _probes as probes

RANK = {"healthy": 0, "degraded": 1, "down": 2}


class ProbeFailed(RunbookError):
    """The probe ends in failure; ``result`` holds the last round."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result or {}


def argument_spec():
    spec = dict(
        checks=dict(type="list", elements="dict", required=True),
        wait_for=dict(type="str", choices=["healthy", "degraded"]),
        timeout=dict(type="int", default=60),
        interval=dict(type="float", default=2),
        success_threshold=dict(type="int", default=1),
        failure_threshold=dict(type="int"),
        start_period=dict(type="int", default=0),
        limits=dict(type="dict", default={}),
    )
    spec.update(docker_argument_spec())
    return spec


def secrets(params):
    """The values to mask in everything returned: checks are free-form dicts, so no_log cannot reach them."""
    found = set()
    for check in params["checks"] or []:
        found.update(probes.secrets_of(check))
    return found


def with_default_limits(check, limits):
    """``check`` with the default limits of its type (the runbooks' thresholds, from the health role) unless it
    sets warning or critical limits of its own."""
    defaults = limits.get(check.get("type")) or {}
    if not isinstance(check, dict) or not defaults or "warning" in check or "critical" in check:
        return check
    return dict(check, **{level: dict(defaults[level]) for level in ("warning", "critical") if level in defaults})


def validate(params):
    """Raise ProbeFailed naming the check or parameter that is wrong."""
    if not params["checks"]:
        raise ProbeFailed("checks is empty: give at least one check")
    names = [c.get("name") for c in params["checks"]]
    if len(set(names)) != len(names):
        raise ProbeFailed("check names must be unique (got %s)" % ", ".join(str(n) for n in names))
    for check_type, limits in (params.get("limits") or {}).items():
        if check_type not in measures.METRICS or not isinstance(limits, dict) or set(limits) - {"warning", "critical"}:
            raise ProbeFailed("limits: %r must be a check type with limits (%s) mapped to warning and/or critical "
                              "dicts, such as {latency: {warning: {p95_ms: 500}}}" % (
                                  check_type, ", ".join(sorted(measures.METRICS))))
    params["checks"] = [with_default_limits(check, params.get("limits") or {}) for check in params["checks"]]
    for check in params["checks"]:
        try:
            probes.validate_check(check)
        except probes.CheckInputError as exc:
            raise ProbeFailed(str(exc))
    for key in ("timeout", "success_threshold", "failure_threshold"):
        if params[key] is not None and params[key] < 1:
            raise ProbeFailed("%s=%s must be 1 or more" % (key, params[key]))
    if params["interval"] <= 0 or params["start_period"] < 0:
        raise ProbeFailed("interval must be above 0 and start_period 0 or more")


DOCKER_CHECKS = ("container", "container_stats", "logs", "docker_disk")


def needs_docker(params):
    return any(c.get("type") in DOCKER_CHECKS for c in params["checks"])


def run_check(check, docker):
    started = time.monotonic()
    try:
        kind = check["type"]
        if kind == "container":
            status, message, details = probes.check_container(check, docker())
        elif kind == "container_stats":
            status, message, details = measures.check_container_stats(check, docker())
        elif kind == "logs":
            status, message, details = measures.check_logs(check, docker(), probes.log_window(check))
        elif kind == "docker_disk":
            status, message, details = measures.check_docker_disk(check, docker())
        elif kind == "latency":
            status, message, details = measures.check_latency(check, probes.one_request)
        else:
            runner = dict(http=probes.check_http, status_json=probes.check_http, tcp=probes.check_tcp,
                          redis=probes.check_redis, tls=probes.check_tls, disk=probes.check_disk,
                          postgres=probes.check_postgres)[kind]
            status, message, details = runner(check)
        status, message, details = measures.graded(check, status, message, details)
    except Exception as exc:  # pylint: disable=broad-except
        status, message, details = "fail", "check raised %s: %s" % (type(exc).__name__, exc), {}
    return dict(name=check["name"], type=check["type"], severity=check.get("severity", "critical"), status=status,
                latency_ms=round((time.monotonic() - started) * 1000, 1), message=message, details=details)


def run_round(checks, docker):
    # every check at once (they wait on the network, not the CPU), so a round takes as long as its slowest check
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(64, len(checks))) as pool:
        return list(pool.map(lambda c: run_check(c, docker), checks))


def summarize(status, results):
    passing = sum(1 for r in results if r["status"] == "pass")
    problems = ["%s (%s)" % (r["name"], r["message"]) for r in results if r["status"] != "pass"]
    return "%s: %d/%d checks pass%s" % (status, passing, len(results), "; " + "; ".join(problems) if problems else "")


def lazy_docker(docker_host):
    """A function returning a docker client made on its first call (most checks never need one)."""
    client = []

    def docker():
        if not client:
            from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_client
            client.append(docker_client(docker_host))
        return client[0]
    return docker


def watch(checks, seconds, interval, docker_host=None):
    """Run rounds of ``checks`` for ``seconds`` (a deploy's monitor window); raise ProbeFailed at the first
    round that is down, else return the last round's result."""
    docker = lazy_docker(docker_host)
    deadline = time.monotonic() + seconds
    rounds = 0
    while True:
        rounds += 1
        results = run_round(checks, docker)
        status = probes.verdict(results)
        result = dict(status=status, checks=results, attempts=rounds, summary=summarize(status, results))
        if status == "down":
            raise ProbeFailed("down during the %ss monitor window (round %d): %s"
                              % (seconds, rounds, result["summary"]), result)
        if time.monotonic() + interval > deadline:
            return result
        time.sleep(interval)


def wait_until_up(checks, timeout, interval, docker_host=None):
    """Wait until ``checks`` are not down (warnings allowed): the gate after a deploy or a restart. Raise ProbeFailed."""
    return probe(dict(checks=checks, wait_for="degraded", timeout=timeout, interval=interval, success_threshold=1,
                      failure_threshold=None, start_period=0, docker_host=docker_host))


def probe(params, check_mode=False):
    """Run the checks (repeatedly with wait_for) and return the result; raise ProbeFailed when waiting fails."""
    docker = lazy_docker(params["docker_host"])
    started = time.monotonic()
    attempts = passes = misses = 0
    while True:
        attempts += 1
        results = run_round(params["checks"], docker)
        status = probes.verdict(results)
        result = dict(changed=False, status=status, checks=results, attempts=attempts,
                      summary=summarize(status, results))
        if check_mode:
            result["msg"] = "check mode: the checks only read, so they ran"
        if not params["wait_for"]:
            return result
        if RANK[status] <= RANK[params["wait_for"]]:
            passes, misses = passes + 1, 0
            if passes >= params["success_threshold"]:
                return result
        else:
            passes = 0
            if time.monotonic() - started >= params["start_period"]:
                misses += 1
            fatal = [r for r in results if r["details"].get("fatal")]
            if fatal:
                raise ProbeFailed("not waiting any longer: %s" % "; ".join(r["message"] for r in fatal), result)
            if params["failure_threshold"] and misses >= params["failure_threshold"]:
                raise ProbeFailed("%d rounds in a row not %s: %s" % (misses, params["wait_for"], result["summary"]),
                                  result)
        if time.monotonic() - started + params["interval"] > params["timeout"]:
            raise ProbeFailed("not %s after %ds (%d attempts): %s" % (
                params["wait_for"], params["timeout"], attempts, result["summary"]), result)
        time.sleep(params["interval"])
