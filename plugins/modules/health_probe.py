#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: health_probe
short_description: Run many health checks at once and give one verdict, optionally waiting for it
version_added: 0.1.0
description:
  - Runs the checks the runbooks do by hand (curl and jq, time curl, docker compose ps, pg_isready, redis-cli ping,
    openssl s_client, df) concurrently and returns each check's status, latency and message and one verdict
    C(healthy), C(degraded) or C(down).
  - A failing check of severity C(critical) makes the verdict C(down); a failing C(warning) check, or a check that
    only warns (a certificate near expiry, a disk nearly full, a degraded service), makes it C(degraded).
  - With O(wait_for) it repeats the checks every O(interval) seconds until the verdict holds O(success_threshold)
    times in a row, and fails at O(timeout) with the last results, or at once when a container has exited or is
    unhealthy.
requirements:
  - python jmespath (C(jmespath))
  - The Python docker SDK (C(docker)) for C(container), C(container_stats), C(logs) and C(docker_disk) checks
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_docker
attributes:
  check_mode:
    support: full
    description: The checks only read, so they run in check mode too.
  diff_mode:
    support: none
    description: Nothing changes.
options:
  checks:
    description:
      - The checks. Each is a dict with C(name), C(type) and C(severity) (C(critical), the default, or C(warning)),
        C(timeout) (seconds, default 5) and the options of its type.
      - C(http) and C(status_json) take C(url), C(method), C(headers), C(status) (accepted codes, default [200]),
        C(max_latency_ms), C(body_regex), C(json) (jmespath expression to the expected value, or to a one-key dict
        naming a comparison, one of eq, ne, lt, le, gt, ge, contains and matches, and its value), C(validate_certs),
        C(ca_path);
        C(status_json) also C(services) (jmespath to the per-service statuses, default C(services)), each of
        up, degraded or down.
      - C(tcp) takes C(host) and C(port); C(redis) also C(password); C(tls) also C(server_name), C(warning_days)
        (30) and C(critical_days) (7).
      - C(postgres) takes the collection's connection options (C(login_host), C(login_port), C(login_user),
        C(login_password), C(container)...), C(database), C(query) (must return a row) and C(tables) (must exist).
      - C(container) takes C(container) and C(require_healthcheck) (default true; a container without a
        healthcheck is reported as such, never silently healthy).
      - C(disk) takes C(path), C(warning_percent) (80) and C(critical_percent) (90).
      - C(latency) takes C(url) (and C(method), C(headers), C(status) as C(http)) and C(requests) (20), sent one after
        another; it measures C(p50_ms), C(p95_ms), C(max_ms) and C(error_percent).
      - C(container_stats) takes C(container), or C(service) and C(project) of a compose stack (the busiest container
        is graded); one docker stats sample measures C(cpu_percent) (100 is one core), C(memory_percent) (of the
        container's limit) and C(memory_bytes).
      - C(logs) takes C(container), or C(service) and C(project), C(pattern) (a regular expression, case-insensitive
        unless C(case_sensitive)), C(since) (the window, default C(15m)) and C(per) (the denominator's pattern, such
        as request lines); it measures C(matches) and, with C(per), C(match_percent).
      - C(docker_disk) measures C(images_bytes), C(build_cache_bytes), C(volumes_bytes), C(containers_bytes) and
        C(total_bytes) (docker system df).
      - C(redis) also measures C(connected_clients), C(used_memory_bytes) and, when redis has a C(maxmemory),
        C(memory_percent); C(postgres) also C(connections), C(connections_percent) (of C(max_connections)),
        C(longest_query_seconds) and C(longest_transaction_seconds) (of other sessions).
      - "Every check of these types takes C(warning) and C(critical): limits on what it measures, such as
        C({p95_ms: 500}); a value at or over a critical limit fails the check, at or over a warning limit it warns.
        The message names the values and the limits reached; every measured value is in the check's C(details)."
    type: list
    elements: dict
    required: true
  limits:
    description:
      - "Default limits per check type, for the checks of that type that set no C(warning) and C(critical) of their
        own, such as C({latency: {warning: {p95_ms: 500}, critical: {p95_ms: 2000}}}). The health role passes the
        runbooks' thresholds (C(health_thresholds))."
    type: dict
    default: {}
  wait_for:
    description: Repeat the checks until the verdict is this or better (C(degraded) accepts C(healthy) too).
    type: str
    choices: [healthy, degraded]
  timeout:
    description: With O(wait_for), seconds to wait at most.
    type: int
    default: 60
  interval:
    description: With O(wait_for), seconds between rounds of checks.
    type: float
    default: 2
  success_threshold:
    description: With O(wait_for), rounds in a row that must satisfy it.
    type: int
    default: 1
  failure_threshold:
    description: With O(wait_for), give up after this many rounds in a row that do not satisfy it (after O(start_period)).
    type: int
  start_period:
    description: With O(wait_for), seconds of grace at the start in which failing rounds do not count against O(failure_threshold).
    type: int
    default: 0
notes:
  - Without O(wait_for) the task reports the verdict and does not fail on it.
  - When the task runs on the controller itself (connection C(local), such as C(delegate_to=localhost) for URL checks)
    and without become, the action plugin runs the checks in the controller's own process, with the controller's
    Python libraries, instead of starting the module; the results are the same. Anywhere else the module runs on
    the host.
seealso:
  - module: ansible.builtin.uri
"""

EXAMPLES = r"""
- name: Is the stack healthy?
  stackops.runbook.health_probe:
    checks:
      - {name: api, type: http, url: "http://127.0.0.1:8080/health", json: {status: ok}, max_latency_ms: 500}
      - {name: services, type: status_json, url: "http://127.0.0.1:8080/api/system/status"}
      - {name: database, type: postgres, container: app-postgres-1, database: app, tables: [users]}
      - {name: cache, type: redis, host: 127.0.0.1, port: 6379}
      - {name: worker, type: container, container: app-worker-1}
      - {name: certificate, type: tls, host: app.example.com, port: 443, severity: warning}
      - {name: disk, type: disk, path: /var/lib/docker, severity: warning}
      - {name: api p95, type: latency, url: "http://127.0.0.1:8080/health", warning: {p95_ms: 500}, critical: {p95_ms: 2000}}
      - {name: api errors, type: logs, service: api, project: app, pattern: " 5\\d\\d ", per: "HTTP/1", since: 15m,
         warning: {match_percent: 1}, critical: {match_percent: 5}}
      - {name: api cpu, type: container_stats, service: api, project: app, warning: {cpu_percent: 80}}
  register: health

- name: Wait until the API is healthy after a deploy
  stackops.runbook.health_probe:
    checks:
      - {name: ready, type: http, url: "http://127.0.0.1:8080/health/ready"}
    wait_for: healthy
    timeout: 120
    success_threshold: 3
"""

RETURN = r"""
status:
  description: The verdict, C(healthy), C(degraded) or C(down).
  returned: always
  type: str
  sample: healthy
checks:
  description: Each check's result.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "api", "type": "http", "severity": "critical", "status": "pass", "latency_ms": 12.5,
            "message": "HTTP 200 in 12 ms", "details": {"http_status": 200}}]
summary:
  description: One line for humans.
  returned: always
  type: str
  sample: "healthy: 7/7 checks pass"
attempts:
  description: Rounds of checks run.
  returned: always
  type: int
  sample: 1
"""

from ansible_collections.stackops.runbook.plugins.module_utils import _health
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries


def main():
    module = RunbookModule(argument_spec=_health.argument_spec(), supports_check_mode=True)
    p = module.params
    module.no_log_values.update(_health.secrets(p))
    require_libraries(module, jmespath=True, docker=_health.needs_docker(p))
    try:
        _health.validate(p)
        module.exit_json(**_health.probe(p, module.check_mode))
    except RunbookError as exc:
        module.fail_from(exc)


if __name__ == "__main__":
    main()
