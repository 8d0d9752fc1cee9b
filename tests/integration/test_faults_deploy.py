"""Faults of deploys and drills (the README's fault matrix, rows 9-12): runs killed halfway (a cancelled AWX job,
a lost SSH connection) and two deploys of one project at once, against the sandbox's real compose stack and real
drill containers and scratch databases."""

import os
import signal

import pytest

from conftest import ModuleRun, drill_objects, fault, postgres_image, run_module, running_stack, wait_for
from test_compose_release import release


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("faults")) as stack:
        yield stack


def kill(run):
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait()
    os.unlink(run.argsfile.name)


def work_folders(stack):
    return [n for n in os.listdir(stack.dir) if n.startswith(".stackops-release.")]


@fault(9, "a deploy is killed during the start-first gate (old and new containers both running)",
       "the attempt's ledger line is written before acting; the next deploy removes the new containers and "
       "work folders, records the attempt as interrupted and restores the scale", "the old release, serving")
def test_a_deploy_killed_in_the_start_first_gate_is_cleaned_up_by_the_next(stack):
    run = ModuleRun("compose_release", release(stack, "1.2.0-never-healthy", strategy="start-first",
                                               health_timeout=120))
    wait_for(lambda: len(stack.api_containers()) == 2, timeout=60, interval=0.2)
    kill(run)
    assert len(stack.api_containers()) == 2 and stack.version() in ("1.0.0", "1.2.0-never-healthy")
    assert stack.ledger_entries()[-1]["result"] == "started"

    result = run_module("compose_release", release(stack, "1.1.0", strategy="start-first"))
    assert result.get("failed") is not True, result["msg"]
    (interrupted,) = result["recovered"]["interrupted"]
    assert "deploy 1.2.0-never-healthy was interrupted" in interrupted["message"]
    assert len(interrupted["removed_containers"]) == 1
    assert len(stack.api_containers()) == 1 and stack.version() == "1.1.0"
    assert work_folders(stack) == []
    results = [(e["version"], e["result"]) for e in stack.ledger_entries()]
    assert ("1.2.0-never-healthy", "interrupted") in results and results[-1] == ("1.1.0", "succeeded")


@fault(10, "a deploy is killed in the monitor window, after the new release took over",
       "the env file and the ledger say what serves from the switch on; a rollback compares with the image ids "
       "that run", "the new release serving, and the means to roll it back")
def test_a_deploy_killed_in_the_monitor_window_leaves_env_and_ledger_saying_what_serves(stack):
    assert stack.version() == "1.1.0"
    run = ModuleRun("compose_release", release(stack, "1.5.0", strategy="recreate", monitor=120))
    wait_for(lambda: stack.ledger_entries()[-1]["result"] == "switched" and stack.version() == "1.5.0",
             timeout=90, interval=0.3)
    kill(run)
    assert stack.version() == "1.5.0" and stack.env_version() == "1.5.0"
    assert stack.ledger_entries()[-1]["serving_version"] == "1.5.0"

    result = run_module("compose_release", release(stack, state="rolled_back", version=None))
    assert result.get("failed") is not True, result["msg"]
    assert result["changed"] and result["version"] == "1.1.0"
    assert "1.5.0 serves" in result["recovered"]["interrupted"][0]["message"]
    assert stack.version() == "1.1.0" and stack.env_version() == "1.1.0"


@fault(11, "two deploys of one compose project with different ledger_path",
       "one lock per compose project on the host (/run/lock), whatever the ledger: the second fails at once",
       "the first deploy's work")
def test_two_deploys_of_one_project_with_different_ledgers_never_run_together(stack, tmp_path):
    serving = stack.version()
    first = ModuleRun("compose_release", release(stack, "1.2.0-never-healthy", strategy="start-first",
                                                 health_timeout=15))
    wait_for(lambda: len(stack.api_containers()) == 2, timeout=60, interval=0.2)
    second = run_module("compose_release", release(stack, "1.5.0", ledger_path=str(tmp_path / "other.jsonl")))
    assert second["failed"] and "another deploy of this project (%s)" % stack.name in second["msg"]
    assert not os.path.exists(str(tmp_path / "other.jsonl"))
    outcome = first.result()
    assert outcome["failed"] and outcome["rolled_back"] is True
    assert stack.version() == serving and len(stack.api_containers()) == 1


def drill_containers(pid):
    """The drill containers and networks of the module run ``pid``."""
    return drill_objects(lambda owner: owner == pid)


def scratch_databases(pg):
    return pg.psql("postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'stackops_drill_%'").split()


@fault(12, "a drill is killed halfway (its container, network and restored copy in place)",
       "the owner's host, boot id, pid and start time are recorded; the next drill removes leftovers whose owner "
       "is gone, whatever their age, and reuses the port", "nothing of the killed drill")
def test_a_killed_drill_s_container_and_port_are_freed_by_the_next_drill(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    port = 55000 + os.getpid() % 1000
    args = dict(path=dest, database="app", drill_image=postgres_image(), drill_port=port,
                log_dir=str(tmp_path / "logs"))
    run = ModuleRun("restore_drill", args)
    killed = run.proc.pid
    wait_for(lambda: drill_containers(killed), timeout=120, interval=0.2)
    kill(run)
    assert drill_containers(killed)
    second = ModuleRun("restore_drill", args)
    result = second.result()
    assert not result.get("failed"), result.get("msg")
    assert result["passed"] and drill_containers(killed) == [] and drill_containers(second.proc.pid) == []


def test_a_killed_drill_s_scratch_database_is_dropped_by_the_next_drill(host_pg, tmp_path):
    dest = str(tmp_path / "backups")
    run_module("pg_backup", dict(host_pg.connection(), database="app", dest=dest))
    args = dict(host_pg.connection(), path=dest, database="app", log_dir=str(tmp_path / "logs"))
    run = ModuleRun("restore_drill", args)

    def restoring():
        # the restore is under way once the scratch database has a table
        return [d for d in scratch_databases(host_pg)
                if host_pg.psql(d, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", check=False)
                not in ("", "0")]
    killed = wait_for(restoring, timeout=60, interval=0.1)
    kill(run)
    assert scratch_databases(host_pg) == killed
    result = run_module("restore_drill", args)
    assert not result.get("failed"), result.get("msg")
    assert scratch_databases(host_pg) == []
