"""The full-stack drill (restore_drill_stack): the newest config, database and uploads volume backups of a running
sandbox copy go into a throwaway copy of its compose project on the same engine - own project name, network and
volumes, ports on ephemeral loopback ports - the API boots on them and the smoke checks run through the copy's proxy
and against its database. Production's containers and data are untouched, the copy is always removed (and a killed
drill's copy swept by the next), and the drill fails with a clear reason when the uploads backup is missing or the
database backup is of an emptied database."""

import os
import shutil
import subprocess

import pytest

from conftest import ROOT, answers, local_inventory, run_module, run_playbook, running_stack, task_results, failures

DRILL_LABEL = "io.stackops.drill.of="


def copy_networks():
    """The networks of drill copies (compose projects drill-XXXX) on the engine."""
    return set(subprocess.run(["docker", "network", "ls", "--format", "{{.Name}}", "--filter", "name=^drill-"],
                              capture_output=True, text=True, check=True).stdout.split())


# only this file makes drill copies: any network of one that appears while it runs is a leftover of its drills
NETWORKS_BEFORE = copy_networks()


def drill_leftovers(project):
    found = []
    for what in (["ps", "-aq"], ["volume", "ls", "-q"], ["network", "ls", "-q"]):
        found += subprocess.run(["docker"] + what + ["--filter", "label=" + DRILL_LABEL + project],
                                capture_output=True, text=True, check=True).stdout.split()
    # the default network compose makes for a copy, which an unlabelled one would leave behind
    return found + sorted(copy_networks() - NETWORKS_BEFORE)


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    """The sandbox copy with files in its uploads volume, and its config, database and volume backups on disk."""
    base = tmp_path_factory.mktemp("stack-drill")
    with running_stack(base) as stack:
        (api,) = stack.api_containers()
        subprocess.run(["docker", "exec", api, "sh", "-c", "head -c 50000 /dev/urandom > /srv/uploads/a.bin"], check=True)
        dirs = dict(config=str(base / "config"), postgres=str(base / "postgres"), volumes=str(base / "volumes"),
                    empty=str(base / "no-volumes"), logs=str(base / "drills"))
        for name, args in (("config_backup", dict(paths=[stack.dir], dest=dirs["config"])),
                           ("pg_backup", dict(database="app", container=stack.postgres, dest=dirs["postgres"])),
                           ("volume_backup", dict(volume=stack.name + "-uploads", dest=dirs["volumes"]))):
            made = run_module(name, args)
            assert not made.get("failed"), made.get("msg")
        os.makedirs(dirs["empty"])
        yield stack, dirs, local_inventory(base)


def drill_vars(stack, dirs, **overrides):
    values = dict(
        restore_drill_stack=True, restore_drill_database="app", restore_drill_path=dirs["postgres"],
        restore_drill_stack_project=stack.name, restore_drill_stack_project_dir=stack.dir,
        restore_drill_stack_config_path=dirs["config"], restore_drill_stack_volumes=[stack.name + "-uploads"],
        restore_drill_stack_volume_path=dirs["volumes"], restore_drill_log_dir=dirs["logs"],
        restore_drill_stack_timeout=120, report_ledger_path=os.path.join(dirs["logs"], "ledger.jsonl"),
        restore_drill_smoke=[
            dict(name="api ready", type="http",
                 url="http://127.0.0.1:{{ restore_drill_stack_ports.proxy['8080'] }}/health/ready"),
            dict(name="users restored", type="postgres", container="{{ restore_drill_stack_containers.postgres[0] }}",
                 login_host="127.0.0.1", database="app", query="SELECT 1 FROM users HAVING count(*) > 1000")])
    values.update(overrides)
    return values


def playbook():
    return os.path.join(ROOT, "playbooks", "restore_drill.yml")


def test_the_app_boots_on_the_restored_backups_in_a_copy_and_production_is_untouched(backed_up, tmp_path, capsys):
    stack, dirs, inventory = backed_up
    production = sorted(subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=" + stack.name],
                                       capture_output=True, text=True, check=True).stdout.split())
    # what a killed drill leaves: a copy of the project, created and never removed
    leftover = str(tmp_path / "killed")
    shutil.copytree(stack.dir, leftover)
    killed = run_module("compose_drill_project", dict(project_src=leftover, project_name="drill-killed0",
                                                      drill_of=stack.name))
    assert not killed.get("failed"), killed.get("msg")
    assert killed["ports"] == {} and "postgres: no fixed container name" in killed["changes"]
    assert drill_leftovers(stack.name)

    rc, out, err = run_playbook(playbook(), inventory, drill_vars(stack, dirs))
    assert rc == 0, failures(out) + err[-2000:]
    swept = task_results(out, "Remove what a killed stack drill left")
    assert any("drill-killed0" in item for item in swept["removed"])
    log = open([os.path.join(dirs["logs"], f) for f in sorted(os.listdir(dirs["logs"])) if f.endswith(".md")][-1]).read()
    assert "| Result | **PASSED** |" in log and "started on the restored data and passed every smoke check" in log
    assert "api ready: HTTP 200" in log and "users restored: PostgreSQL" in log
    assert drill_leftovers(stack.name) == []
    after = sorted(subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.compose.project=" + stack.name],
                                  capture_output=True, text=True, check=True).stdout.split())
    assert after == production and answers(stack) == "1.0.0"
    with capsys.disabled():
        print("\n[stack drill] " + " ".join(line for line in log.splitlines()
                                            if "passed every" in line or line.startswith("- ")))


def test_a_missing_uploads_backup_fails_the_drill_saying_so_and_leaves_nothing(backed_up):
    stack, dirs, inventory = backed_up
    rc, out, err = run_playbook(playbook(), inventory, drill_vars(stack, dirs, restore_drill_stack_volume_path=dirs["empty"]))
    assert rc != 0
    message = task_results(out, "Fail when the stack drill failed")["msg"]
    assert 'FAILED at "Restore the newest volume backups into the copy\'s volumes"' in message
    assert stack.name + "-uploads" in message and "copy of %s was removed" % stack.name in message
    assert drill_leftovers(stack.name) == [] and answers(stack) == "1.0.0"


def test_a_backup_of_an_emptied_database_fails_the_smoke_check(backed_up, tmp_path):
    stack, dirs, inventory = backed_up
    stack.psql("TRUNCATE users CASCADE")
    emptied = str(tmp_path / "emptied")
    made = run_module("pg_backup", dict(database="app", container=stack.postgres, dest=emptied))
    assert not made.get("failed"), made.get("msg")
    emptied_vars = drill_vars(stack, dirs, restore_drill_path=emptied, restore_drill_stack_timeout=40)
    rc, out, err = run_playbook(playbook(), inventory, emptied_vars)
    assert rc != 0
    message = task_results(out, "Fail when the stack drill failed")["msg"]
    assert 'FAILED at "Run the smoke checks against the restored app"' in message
    assert "users restored" in message and "query returned no rows" in message, message
    assert drill_leftovers(stack.name) == []
