"""The shipped playbook, run by ansible-playbook as users run it (also by its collection name),
with the connection options set once through the action group."""

import json
import os

from conftest import local_inventory, run_playbook, task_results


def playbook_vars(host_pg, dest, s3, s3_prefix):
    return dict(backup_connection=dict(login_host="127.0.0.1", login_port=host_pg.port,
                                       login_password=host_pg.password),
                backup_dest=dest, backup_databases=["app"], backup_keep_days=7, backup_s3=s3.options(s3_prefix),
                report_ledger_path=os.path.join(dest, "..", "ledger.jsonl"))


def test_the_backup_playbook_backs_up_each_database_and_the_globals(host_pg, s3, s3_prefix, tmp_path):
    dest = str(tmp_path / "backups")
    rc, output, stderr = run_playbook("playbooks/backup.yml", local_inventory(tmp_path),
                                      playbook_vars(host_pg, dest, s3, s3_prefix))
    assert rc == 0, stderr
    databases = task_results(output, "Back up each database")["results"]
    assert [r["item"] for r in databases] == ["app"]
    globals_result = task_results(output, "Back up roles and other global objects")
    assert globals_result["manifest"]["kind"] == "globals"
    local = sorted(f for f in os.listdir(dest) if not f.startswith("."))
    assert len(local) == 4
    assert sorted(os.path.basename(k) for k in s3.keys(s3_prefix)) == local
    # the password given to the play never reaches the output
    assert host_pg.password not in json.dumps(output)


def test_the_playbook_runs_by_its_collection_name_and_in_check_mode(host_pg, s3, s3_prefix, tmp_path):
    dest = str(tmp_path / "backups")
    rc, output, stderr = run_playbook("stackops.runbook.backup", local_inventory(tmp_path),
                                      playbook_vars(host_pg, dest, s3, s3_prefix), check=True)
    assert rc == 0, stderr
    planned = task_results(output, "Back up each database")["results"][0]
    assert planned["changed"] and planned["path"].startswith(dest + "/app_")
    assert not os.path.exists(dest)
    assert s3.keys(s3_prefix) == []
