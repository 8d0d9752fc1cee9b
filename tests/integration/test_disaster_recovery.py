"""Losing the server: a copy of the sandbox's stack (its own project name, at release 1.1.0 of an image built here,
in no registry) is backed up encrypted to the S3 API by the backup role - config, release images, roles, database,
uploads volume - and then everything on the host is destroyed: containers, volumes, the project directory, the image,
the local backups and every ledger. playbooks/disaster_recovery.yml, given only the bucket, its credentials and the age
identity, brings it back (a first attempt that fails at the health gate is continued by the same command): the API
healthy at the same release, every table's row count equal to its manifest, the uploads byte-identical, the RTO and
RPO in the ledger and the metrics. Check mode prints the plan and changes nothing; a host that holds the project's
data is refused without the confirmation."""

import json
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import (ROOT, exact_counts, failures, local_inventory, observability_metric_names, run_module, run_playbook,
                      running_stack, task_results)
from test_encryption import Key

PLAYBOOKS = os.path.join(ROOT, "playbooks")


def docker(*args, check=True):
    return subprocess.run(["docker"] + list(args), capture_output=True, text=True, check=check)


def uploads_listing(volume, image):
    """sha256 and path of every file of the volume, through a container of ``image`` that mounts it read-only."""
    out = docker("run", "--rm", "-v", "%s:/data:ro" % volume, "--entrypoint", "sh", image, "-c",
                 "cd /data && find . -type f -exec sha256sum {} + | sort").stdout
    return out.splitlines()


@pytest.fixture
def app_image():
    """The API's images under a name of this test; 1.1.0 gets an image id of its own (a label), so removing it
    really removes it and only the image backup can bring it back."""
    name = "stackops-dr-%s/api" % uuid.uuid4().hex[:8]
    base = open(os.path.join(ROOT, ".build", "images.env")).read().split("SANDBOX_API_IMAGE=")[1].split()[0]
    docker("tag", base + ":1.0.0", name + ":1.0.0")
    subprocess.run(["docker", "build", "-q", "-t", name + ":1.1.0", "-"], check=True, capture_output=True, text=True,
                   env=dict(os.environ, DOCKER_BUILDKIT="0"),
                   input="FROM %s:1.1.0\nLABEL io.stackops.test.recovered=%s\n" % (base, name))
    try:
        yield name
    finally:
        docker("rmi", "-f", name + ":1.0.0", name + ":1.1.0", check=False)


def app_counts(stack):
    def scalar(database, sql):
        rows = stack.psql(sql)
        return rows[0][0] if rows else ""
    return exact_counts(scalar, "app")


def test_the_server_is_lost_and_the_stack_comes_back_from_the_offsite_copy(tmp_path, s3, s3_prefix, app_image, capsys):
    key = Key(str(tmp_path), "ops")
    inventory = local_inventory(tmp_path)
    work = tmp_path / "host"
    ledger, metrics, history = str(work / "ledger.jsonl"), str(work / "metrics"), str(work / "drills.jsonl")
    os.makedirs(metrics)
    with running_stack(tmp_path / "stack", SANDBOX_API_IMAGE=app_image) as stack:
        deployed = run_module("compose_release", dict(
            project_src=stack.dir, project_name=stack.name, ledger_path=stack.ledger, services=["api"], version="1.1.0",
            pull="never", health_interval=0.5, health_timeout=60, monitor=2, keep_releases=50,
            version_url=stack.url + "/api/version",
            health_checks=[dict(name="ready", type="http", url=stack.url + "/health/ready")]))
        assert not deployed.get("failed"), deployed.get("msg")
        (api,) = stack.api_containers()
        uploads = stack.name + "-uploads"
        docker("exec", api, "sh", "-c", "mkdir -p /srv/uploads/avatars && head -c 300000 /dev/urandom > "
               "/srv/uploads/avatars/a.png && printf 'invoice' > /srv/uploads/invoice-1.pdf")
        files_before = uploads_listing(uploads, app_image + ":1.1.0")
        counts_before = app_counts(stack)
        assert counts_before["public.users"] > 1000 and len(files_before) >= 2

        rc, out, err = run_playbook(os.path.join(PLAYBOOKS, "backup.yml"), inventory, dict(
            backup_databases=["app"], backup_globals=True, backup_container=stack.postgres,
            backup_dest=str(work / "backups/postgres"), backup_s3=s3.options(s3_prefix),
            backup_age_recipients=[key.recipient],
            backup_volumes=[uploads], backup_volume_dest=str(work / "backups/volumes"),
            backup_config_paths=[stack.dir], backup_config_dest=str(work / "backups/config"),
            backup_images_release_ledger=stack.ledger, backup_images_dest=str(work / "backups/images"),
            report_ledger_path=ledger))
        assert rc == 0, failures(out) + err[-2000:]
        keys = s3.keys(s3_prefix + "/")
        for kind in ("config/config_", "images/images_", "volumes/" + uploads + "_", "app_", "globals_"):
            assert any(k.startswith("%s/%s" % (s3_prefix, kind)) and k.endswith(".age") for k in keys), (kind, keys)
        manifest_key = [k for k in keys if k.startswith(s3_prefix + "/app_") and k.endswith(".json")][-1]
        manifest = json.loads(s3.client.get_object(Bucket=s3.bucket, Key=manifest_key)["Body"].read())
        assert manifest["row_counts"] == counts_before

        # the server is gone: nothing of the stack, its data, its backups or the collection's state is left
        down = stack.compose("down", "-v", "--remove-orphans")
        assert down.returncode == 0, down.stderr
        shutil.rmtree(stack.dir)
        shutil.rmtree(str(work))
        os.makedirs(metrics)
        os.remove(stack.ledger)
        docker("rmi", app_image + ":1.1.0")
        assert docker("image", "inspect", app_image + ":1.1.0", check=False).returncode != 0
        assert docker("volume", "inspect", uploads, check=False).returncode != 0
        with open(history, "w") as fh:  # a drill once restored this database in 4.2 s
            fh.write(json.dumps(dict(database="app", passed=True, restore_seconds=4.2, time="2026-11-20T03:00:00Z"))
                     + "\n")

        recovery = dict(
            disaster_recovery_s3=s3.options(s3_prefix), disaster_recovery_age_identity_file=key.path,
            disaster_recovery_project_dir=stack.dir, disaster_recovery_project_name=stack.name,
            disaster_recovery_container=stack.postgres, disaster_recovery_other_services=["redis", "worker", "proxy"],
            disaster_recovery_release_ledger=stack.ledger, disaster_recovery_require=["config", "images", "globals"],
            disaster_recovery_version_url=stack.url + "/api/version",
            disaster_recovery_health_checks=[dict(name="ready", type="http", url=stack.url + "/health/ready")],
            disaster_recovery_drill_history=history, disaster_recovery_progress_dir=str(tmp_path / "progress"),
            disaster_recovery_rto="30m", disaster_recovery_rpo="1h",
            report_ledger_path=ledger, report_metrics_dir=metrics)

        rc, out, err = run_playbook(os.path.join(PLAYBOOKS, "disaster_recovery.yml"), inventory, recovery, check=True)
        assert rc == 0, failures(out) + err[-2000:]
        plan = task_results(out, "Pick the backup set and check this host holds nothing it would replace")
        assert plan["holds_data"] == [] and plan["config"]["encrypted"] and plan["images"]["release"] == "1.1.0"
        assert [d["label"] for d in plan["databases"]] == ["app"] and plan["globals"]
        assert [v["label"] for v in plan["volumes"]] == [uploads]
        assert plan["predicted_seconds"] == 4.2 and "4 s by the last passing drills" in plan["plan"][-1]
        shown = task_results(out, "Show the plan")["msg"]
        assert "check mode: nothing was changed" in shown and any(line.startswith("database app: app_") for line in shown)
        assert not os.path.exists(stack.dir) and not os.path.exists(ledger)
        assert docker("volume", "inspect", uploads, check=False).returncode != 0

        # a first attempt fails at the last step (a health check that cannot pass): it says where it stopped,
        # and the same command continues from there without the confirmation
        broken = dict(recovery, disaster_recovery_health_timeout=15, disaster_recovery_health_checks=[
            dict(name="ready", type="http", url=stack.url + "/health/never-there")])
        rc, out, err = run_playbook(os.path.join(PLAYBOOKS, "disaster_recovery.yml"), inventory, broken)
        assert rc != 0
        stopped = task_results(out, "Stop here, the recovery failed")["msg"]
        assert 'FAILED at "Start the app at its last good release behind the health gate"' in stopped, stopped
        assert "run the same command again" in stopped and os.listdir(str(tmp_path / "progress"))
        assert [json.loads(line) for line in open(ledger)][-1]["result"] == "failed"

        rc, out, err = run_playbook(os.path.join(PLAYBOOKS, "disaster_recovery.yml"), inventory, recovery)
        assert rc == 0, failures(out) + err[-2000:]
        assert task_results(out, "Pick the backup set and check this host holds nothing it would replace")["resuming"]
        assert os.listdir(str(tmp_path / "progress")) == []
        assert stack.version() == "1.1.0" and stack.env_version() == "1.1.0"
        assert docker("image", "inspect", app_image + ":1.1.0", check=False).returncode == 0
        assert app_counts(stack) == manifest["row_counts"]
        assert uploads_listing(uploads, app_image + ":1.1.0") == files_before
        entry = [json.loads(line) for line in open(ledger)][-1]
        assert entry["operation"] == "disaster_recovery" and entry["result"] == "succeeded", entry
        details = entry["details"]
        assert 0 < float(details["rto_seconds"]) < 1800 and 0 <= int(details["rpo_seconds"]) < 3600
        assert details["release"] == "1.1.0" and details["databases"] == [manifest["name"]]
        assert key.secret not in open(ledger).read()
        prom = open(os.path.join(metrics, "stackops_runbook_disaster_recovery.prom")).read()
        assert "stackops_dr_rto_seconds{project=\"%s\"}" % stack.name in prom and "stackops_dr_rpo_seconds" in prom
        # every stackops_dr_ metric the alerting rules and the dashboard read is one the role writes (the objectives:
        # 1800s, 3600s); test_observability checks the other roles' names
        for name in observability_metric_names("stackops_dr_"):
            assert name + "{" in prom, name
        assert "stackops_dr_rto_objective_seconds{project=\"%s\"} 1800" % stack.name in prom
        with capsys.disabled():
            print("\n[disaster recovery] %s; backup set %s" % (
                task_results(out, "Say how the recovery went")["msg"], ", ".join(plan["plan"][:-1])))

        # the host now holds the project: a second recovery is refused, and changes nothing, without the confirmation
        (api,) = stack.api_containers()
        rc, out, err = run_playbook(os.path.join(PLAYBOOKS, "disaster_recovery.yml"), inventory, recovery)
        assert rc != 0
        refused = task_results(out, "Pick the backup set and check this host holds nothing it would replace")
        assert "Refusing to recover %s" % stack.name in refused["msg"] and "disaster_recovery_confirm" in refused["msg"]
        assert stack.api_containers() == [api] and stack.version() == "1.1.0"
