#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_maintenance
short_description: VACUUM (ANALYZE) and REINDEX CONCURRENTLY PostgreSQL tables, with a size report
version_added: 0.1.0
description:
  - The runbooks' weekly C(VACUUM ANALYZE) and the occasional C(REINDEX), with the size report that goes with them,
    from the host or inside the postgres container.
  - VACUUM runs table by table (never C(VACUUM FULL), which locks a table for its whole rewrite), with a
    C(lock_timeout) so a busy table is skipped and reported rather than queued behind; REINDEX only with
    C(CONCURRENTLY) (PostgreSQL 12 and later).
  - Returns the database size and, per table, its total size, live and dead rows before and after, and what was done.
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
    description: Reports the sizes and what would run, and runs nothing.
  diff_mode:
    support: none
    description: Nothing to diff.
options:
  database:
    description: The database.
    type: str
    required: true
  tables:
    description: Tables (C(schema.table) or C(table) in C(public)); default every table of the database.
    type: list
    elements: str
    default: []
  vacuum:
    description: Run C(VACUUM (ANALYZE)) on the tables.
    type: bool
    default: true
  reindex:
    description: Run C(REINDEX TABLE CONCURRENTLY) on the tables.
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for a table's lock before skipping it.
    type: int
    default: 5
seealso:
  - module: stackops.runbook.pg_backup
"""

EXAMPLES = r"""
- name: Weekly VACUUM ANALYZE of the app database
  stackops.runbook.pg_maintenance:
    container: myapp-postgres-1
    database: myapp
"""

RETURN = r"""
database_size:
  description: Bytes of the database after the run.
  returned: always
  type: int
  sample: 52428800
tables:
  description:
    - Each table with its size (indexes and TOAST included, from the catalog's page counts that VACUUM and ANALYZE
      keep current), rows, and what was done (C(vacuumed), C(reindexed), or C(skipped) with why).
  returned: always
  type: list
  elements: dict
  sample: [{"table": "public.users", "total_bytes": 4194304, "live_rows": 5000, "dead_rows_before": 1200,
            "dead_rows_after": 0, "actions": ["vacuumed"], "skipped": null}]
"""

import json

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import (
    ClientContext,
    PsqlSession,
    ident,
    literal,
    postgres_common_argument_spec,
)

# Sizes from the catalog's page counts (kept current by VACUUM and ANALYZE) rather than pg_total_relation_size,
# which waits for a lock: a table locked by a long migration must not stall the report.
STATS_SQL = ("SELECT json_build_object('table', s.schemaname || '.' || s.relname, 'total_bytes', "
             "(SELECT coalesce(sum(x.relpages), 0) FROM pg_class x WHERE x.oid = c.oid OR x.oid = c.reltoastrelid "
             "OR x.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = c.oid))::bigint "
             "* current_setting('block_size')::bigint, 'live_rows', s.n_live_tup, 'dead_rows', s.n_dead_tup) "
             "FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid ORDER BY s.schemaname, s.relname;")


def table_stats(session):
    # the statistics collector reports asynchronously: take a fresh snapshot of it
    session.query("SELECT pg_stat_clear_snapshot();")
    return {row["table"]: row for row in (json.loads(line) for line in session.query(STATS_SQL) if line.strip())}


def qualified(name):
    schema, table = name.rsplit(".", 1) if "." in name else ("public", name)
    return "%s.%s" % (ident(schema), ident(table))


def refused(session, statement):
    """Run one maintenance statement; the server's last error line when it refused it, else None."""
    try:
        session.query(statement)
    except CommandError as exc:
        return str(exc).strip().splitlines()[-1]
    return None


def main():
    spec = postgres_common_argument_spec()
    spec.update(
        database=dict(type="str", required=True),
        tables=dict(type="list", elements="str", default=[]),
        vacuum=dict(type="bool", default=True),
        reindex=dict(type="bool", default=False),
        lock_timeout=dict(type="int", default=5),
    )
    module = RunbookModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if p["lock_timeout"] < 1:
        module.fail_json(msg="lock_timeout=%s must be 1 or more seconds" % p["lock_timeout"])
    require_libraries(module, docker=bool(p["container"]))
    result = dict(changed=False, tables=[])
    try:
        with ClientContext(p) as runner:
            def open_session():
                opened = PsqlSession(runner, p["database"])
                opened.query("SET lock_timeout = '%ds';" % p["lock_timeout"])
                return opened

            session = open_session()
            try:
                before = table_stats(session)
                wanted = [t if "." in t else "public." + t for t in p["tables"]] or sorted(before)
                unknown = [t for t in wanted if t not in before]
                if unknown:
                    module.fail_json(msg="tables: %s not found in %s (nothing was done)"
                                         % (", ".join(unknown), p["database"]))
                actions = {}
                steps = ([("vacuumed", "VACUUM (ANALYZE) %s;")] if p["vacuum"] else []) + (
                    [("reindexed", "REINDEX TABLE CONCURRENTLY %s;")] if p["reindex"] else [])
                for table in wanted:
                    done, skipped = [], None
                    for label, statement in steps:
                        if module.check_mode:
                            done.append("would be " + label)
                            continue
                        failure = refused(session, statement % qualified(table))
                        if failure:
                            # psql stopped (ON_ERROR_STOP): note why, reconnect, go on with the next table
                            skipped = "%s failed: %s" % (label[:-1], failure)
                            session = open_session()
                            break
                        done.append(label)
                    actions[table] = (done, skipped)
                after = table_stats(session)
                result["database_size"] = int(session.scalar("SELECT pg_database_size(%s);" % literal(p["database"])))
            finally:
                session.close()
    except RunbookError as exc:
        module.fail_from(exc, "maintenance of %s failed" % p["database"], **result)
    for table in wanted:
        done, skipped = actions[table]
        result["tables"].append(dict(table=table, total_bytes=after[table]["total_bytes"],
                                     live_rows=after[table]["live_rows"], dead_rows_before=before[table]["dead_rows"],
                                     dead_rows_after=after[table]["dead_rows"], actions=done, skipped=skipped))
        result["changed"] = result["changed"] or any(a in ("vacuumed", "reindexed") for a in done)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
