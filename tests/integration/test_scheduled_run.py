"""The cron fallback: the scheduled_run role installs a job that really runs the playbook, keeps a log,
never overlaps itself, changes nothing when applied twice and removes itself cleanly."""

import json
import os
import subprocess
import sys
import uuid

from conftest import local_inventory, run_playbook


def role_play(tmp_path, **role_vars):
    path = tmp_path / "schedule.yml"
    path.write_text(json.dumps([{"name": "Schedule", "hosts": "db", "gather_facts": False, "roles": [
        {"role": "stackops.runbook.scheduled_run", "vars": role_vars}]}]))
    return str(path)


def test_a_cron_job_runs_the_playbook_logs_it_and_never_overlaps(tmp_path):
    name = "stackops-test-" + uuid.uuid4().hex[:6]
    marker = tmp_path / "ran"
    job = tmp_path / "job.yml"
    job.write_text(json.dumps([{"name": "The job", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Leave a mark", "ansible.builtin.copy": {"dest": str(marker), "content": "ran\n", "mode": "0600"}}]}]))
    inventory = local_inventory(tmp_path)
    settings = dict(scheduled_run_name=name, scheduled_run_playbook=str(job), scheduled_run_cron="7 3 * * 1",
                    scheduled_run_method="cron", scheduled_run_log_dir=str(tmp_path / "log"),
                    scheduled_run_inventory=inventory,
                    scheduled_run_ansible_playbook=os.path.join(os.path.dirname(sys.executable), "ansible-playbook"))
    wrapper = "/usr/local/libexec/stackops-runbook-" + name
    cron_file = "/etc/cron.d/stackops-runbook-" + name
    try:
        rc, output, stderr = run_playbook(role_play(tmp_path, **settings), inventory, {})
        assert rc == 0, stderr
        with open(cron_file) as fh:
            assert "7 3 * * 1 root " + wrapper in fh.read()
        rc, output, stderr = run_playbook(role_play(tmp_path, **settings), inventory, {})
        assert rc == 0 and output["stats"]["db1"]["changed"] == 0, stderr

        run = subprocess.run([wrapper], capture_output=True, text=True, check=False)
        assert run.returncode == 0
        assert marker.read_text() == "ran\n"
        log = (tmp_path / "log" / (name + ".log")).read_text()
        assert "start " + name in log and "end %s rc=0" % name in log and "Leave a mark" in log

        # while a run holds the lock, another one does not start
        holder = subprocess.Popen(["flock", "/run/lock/stackops-runbook-%s.lock" % name, "sleep", "30"])
        try:
            subprocess.run(["sleep", "0.5"], check=True)
            blocked = subprocess.run([wrapper], capture_output=True, text=True, check=False)
        finally:
            holder.kill()
            holder.wait()
        assert blocked.returncode == 75
        assert "not started" in (tmp_path / "log" / (name + ".log")).read_text()
    finally:
        rc, _output, stderr = run_playbook(role_play(tmp_path, scheduled_run_state="absent", **{
            k: v for k, v in settings.items() if k != "scheduled_run_state"}), inventory, {})
    assert rc == 0, stderr
    assert not os.path.exists(cron_file) and not os.path.exists(wrapper)
