#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_idle_sessions
short_description: End PostgreSQL sessions left idle or idle in a transaction for too long
version_added: 0.1.0
description:
  - The incident mitigation the runbooks do by hand with C(SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE ...) when connections run out or an idle transaction holds locks - done with the guard rails.
  - Ends client sessions in the given O(states) whose state has not changed for O(older_than). Never a superuser's
    session, never a replication connection or background worker, never the module's own session, never a user
    or application listed in O(exclude_users) or O(exclude_applications).
  - The sessions are selected and ended in one statement, so a session that became active meanwhile is left
    alone. Check mode lists the sessions that would be ended.
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.postgres
  - stackops.runbook.container
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_postgres_docker
attributes:
  check_mode:
    support: full
    description: Lists the sessions that would be ended and ends none.
  diff_mode:
    support: none
    description: Sessions are not diffed.
options:
  older_than:
    description: How long a session must have been in its state, in seconds or with a unit (C(30s), C(10m), C(1h)).
    type: str
    required: true
  states:
    description: The session states to end.
    type: list
    elements: str
    choices: [idle, idle in transaction, idle in transaction (aborted)]
    default: [idle in transaction, idle in transaction (aborted)]
  database:
    description: Only sessions connected to this database; default every database.
    type: str
  users:
    description: Only sessions of these roles; default every role that is not a superuser.
    type: list
    elements: str
    default: []
  exclude_users:
    description: Never end the sessions of these roles.
    type: list
    elements: str
    default: []
  exclude_applications:
    description: Never end sessions whose C(application_name) is one of these.
    type: list
    elements: str
    default: []
seealso:
  - module: stackops.runbook.health_probe
"""

EXAMPLES = r"""
- name: End transactions left open for more than 10 minutes
  stackops.runbook.pg_idle_sessions:
    container: myapp-postgres-1
    older_than: 10m
    exclude_applications: [pg_dump]
"""

RETURN = r"""
sessions:
  description: The sessions ended (in check mode, that would be ended).
  returned: always
  type: list
  elements: dict
  sample: [{"pid": 4242, "user": "app", "database": "myapp", "application": "api", "client": "172.18.0.5/32",
            "state": "idle in transaction", "seconds": 1830, "terminated": true}]
terminated:
  description: How many sessions were ended.
  returned: always
  type: int
  sample: 1
"""

import json

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import (
    ClientContext,
    PsqlSession,
    literal,
    postgres_common_argument_spec,
)

STATES = ["idle", "idle in transaction", "idle in transaction (aborted)"]


def array(values):
    return "ARRAY[%s]::text[]" % ", ".join(literal(v) for v in values)


def selection(p, seconds):
    """The WHERE clause: the guard rails first, then the caller's filters."""
    conditions = [
        "a.backend_type = 'client backend'",
        "a.pid <> pg_backend_pid()",
        "NOT r.rolsuper",
        "NOT r.rolreplication",
        "a.state = ANY(%s)" % array(p["states"]),
        "a.state_change < now() - make_interval(secs => %d)" % seconds,
    ]
    if p["database"]:
        conditions.append("a.datname = %s" % literal(p["database"]))
    if p["users"]:
        conditions.append("a.usename = ANY(%s)" % array(p["users"]))
    if p["exclude_users"]:
        conditions.append("NOT a.usename = ANY(%s)" % array(p["exclude_users"]))
    if p["exclude_applications"]:
        conditions.append("NOT a.application_name = ANY(%s)" % array(p["exclude_applications"]))
    return " AND ".join(conditions)


def main():
    spec = postgres_common_argument_spec()
    spec.update(
        older_than=dict(type="str", required=True),
        states=dict(type="list", elements="str", choices=STATES, default=STATES[1:]),
        database=dict(type="str"),
        users=dict(type="list", elements="str", default=[]),
        exclude_users=dict(type="list", elements="str", default=[]),
        exclude_applications=dict(type="list", elements="str", default=[]),
    )
    module = RunbookModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    seconds = module.seconds("older_than")
    if not p["states"]:
        module.fail_json(msg="states is empty: name the session states to end, such as idle in transaction")
    require_libraries(module, docker=bool(p["container"]))
    action = "false" if module.check_mode else "pg_terminate_backend(a.pid)"
    sql = ("SELECT json_build_object('pid', a.pid, 'user', a.usename, 'database', a.datname, 'application', "
           "a.application_name, 'client', a.client_addr::text, 'state', a.state, 'seconds', "
           "floor(extract(epoch FROM now() - a.state_change))::int, 'terminated', %s) "
           "FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid WHERE %s ORDER BY a.state_change;"
           % (action, selection(p, seconds)))
    try:
        with ClientContext(p) as runner:
            session = PsqlSession(runner, "postgres")
            try:
                sessions = [json.loads(row) for row in session.query(sql) if row.strip()]
            finally:
                session.close()
    except RunbookError as exc:
        module.fail_from(exc, "cannot list or end the sessions")
    ended = sum(1 for s in sessions if s["terminated"])
    module.exit_json(changed=bool(sessions) and not module.check_mode, sessions=sessions, terminated=ended,
                     msg="%s %d session(s) %s for over %ss" % (
                         "would end" if module.check_mode else "ended", len(sessions), " or ".join(p["states"]),
                         seconds))


if __name__ == "__main__":
    main()
