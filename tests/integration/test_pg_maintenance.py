"""pg_maintenance against a real PostgreSQL: VACUUM (ANALYZE) clears dead rows, a locked table is skipped and
reported while the others are done, REINDEX runs concurrently, check mode runs nothing."""

from conftest import TableLock, run_module

SETUP = """CREATE TABLE maint_a (id int PRIMARY KEY, note text);
CREATE TABLE maint_b (id int PRIMARY KEY, note text);
INSERT INTO maint_a SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
INSERT INTO maint_b SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
ALTER TABLE maint_a SET (autovacuum_enabled = false);
ALTER TABLE maint_b SET (autovacuum_enabled = false);
DELETE FROM maint_a WHERE id % 2 = 0;
DELETE FROM maint_b WHERE id % 2 = 0;"""


def args(host_pg, **extra):
    return dict(host_pg.connection(), database="maint", tables=["maint_a", "public.maint_b"], **extra)


def fresh_database(host_pg):
    # a database of its own: tables added to the shared app database would show up in other tests' dumps
    host_pg.psql("postgres", "DROP DATABASE IF EXISTS maint")
    host_pg.psql("postgres", "CREATE DATABASE maint")
    host_pg.psql("maint", SETUP)


def test_vacuum_clears_dead_rows_and_check_mode_runs_nothing(host_pg):
    fresh_database(host_pg)
    planned = run_module("pg_maintenance", args(host_pg, reindex=True), check_mode=True)
    assert not planned.get("failed"), planned.get("msg")
    assert [t["actions"] for t in planned["tables"]] == [["would be vacuumed", "would be reindexed"]] * 2
    assert all(t["dead_rows_after"] == t["dead_rows_before"] == 10000 for t in planned["tables"])

    done = run_module("pg_maintenance", args(host_pg, reindex=True))
    assert not done.get("failed"), done.get("msg")
    assert done["changed"] and done["database_size"] > 0
    for table in done["tables"]:
        assert table["actions"] == ["vacuumed", "reindexed"] and table["skipped"] is None
        assert table["dead_rows_before"] == 10000 and table["dead_rows_after"] == 0 and table["live_rows"] == 10000


def test_a_locked_table_is_skipped_and_the_others_are_done(host_pg):
    fresh_database(host_pg)
    with TableLock(host_pg, "maint", "maint_a"):
        result = run_module("pg_maintenance", args(host_pg, lock_timeout=1))
    assert not result.get("failed"), result.get("msg")
    locked, free = result["tables"]
    assert locked["table"] == "public.maint_a" and locked["actions"] == [] and "lock timeout" in locked["skipped"]
    assert free["actions"] == ["vacuumed"] and free["dead_rows_after"] == 0


def test_unknown_tables_are_refused_before_anything_runs(host_pg):
    result = run_module("pg_maintenance", dict(host_pg.connection(), database="app", tables=["no_such_table"]))
    assert result["failed"] and "public.no_such_table not found in app" in result["msg"]
