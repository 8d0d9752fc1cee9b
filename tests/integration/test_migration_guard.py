"""migration_guard run as Ansible runs it, on a Prisma-style migrations directory."""

import os

from conftest import run_module

ADD_PLAN = """-- CreateIndex
SET lock_timeout = '5s';
ALTER TABLE "users" ADD COLUMN "plan" TEXT NOT NULL DEFAULT 'free';
CREATE INDEX "users_plan_idx" ON "users"("plan");
"""
DROP_LEGACY = """SET lock_timeout = '5s';
ALTER TABLE "users" DROP COLUMN "legacy_flag";
"""


def migrations(tmp_path):
    root = tmp_path / "prisma" / "migrations"
    for name, sql in (("20261120_add_plan", ADD_PLAN), ("20261121_drop_legacy", DROP_LEGACY)):
        (root / name).mkdir(parents=True)
        (root / name / "migration.sql").write_text(sql)
    (root / "migration_lock.toml").write_text('provider = "postgresql"\n')
    return str(root)


def test_dangerous_migrations_fail_with_file_line_and_the_safe_way(tmp_path):
    result = run_module("migration_guard", dict(paths=[migrations(tmp_path)]))
    assert result["failed"] and result["errors"] == 2
    names = [os.path.basename(os.path.dirname(f)) for f in result["files"]]
    assert names == ["20261120_add_plan", "20261121_drop_legacy"]
    found = {(f["rule"], os.path.basename(os.path.dirname(f["file"])), f["line"]) for f in result["findings"]}
    assert found == {("create-index-without-concurrently", "20261120_add_plan", 4),
                     ("drop-column", "20261121_drop_legacy", 2)}
    assert "CREATE INDEX CONCURRENTLY" in result["msg"] and "20261121_drop_legacy/migration.sql:2 drop-column" in result["msg"]


def test_acknowledged_findings_pass_and_keep_their_reason(tmp_path):
    result = run_module("migration_guard", dict(paths=[migrations(tmp_path)], acknowledge=[
        dict(rule="drop-column", file="20261121_drop_legacy/migration.sql", reason="unused since 1.4"),
        dict(rule="create-index-without-concurrently", reason="users has 40 rows")]))
    assert not result.get("failed"), result.get("msg")
    assert all(f["acknowledged"] for f in result["findings"])
    assert {f["reason"] for f in result["findings"]} == {"unused since 1.4", "users has 40 rows"}


def test_statements_and_bad_input(tmp_path):
    result = run_module("migration_guard", dict(statements=["ALTER TABLE t ALTER COLUMN c TYPE bigint"],
                                                fail_on="never"))
    assert not result.get("failed")
    assert {f["rule"] for f in result["findings"]} == {"column-type-change", "missing-lock-timeout"}
    warned = run_module("migration_guard", dict(statements=["SET lock_timeout = '1s'", "DROP INDEX i"],
                                                fail_on="warning"))
    assert warned["failed"] and warned["warnings_count"] == 1
    missing = run_module("migration_guard", dict(paths=[str(tmp_path / "nope")]))
    assert missing["failed"] and "does not exist" in missing["msg"]
    unknown = run_module("migration_guard", dict(statements=["SELECT 1"], acknowledge=[dict(rule="drop-everything")]))
    assert unknown["failed"] and "unknown rule 'drop-everything'" in unknown["msg"]
