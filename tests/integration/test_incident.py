"""The incident role on a copy of the sandbox's stack with its API stopped: the evidence bundle has every part,
its checksum matches, the summary names the failing service; the restart mitigation brings the API back."""

import hashlib
import json
import os
import subprocess
import tarfile

import pytest

from conftest import ROOT, run_playbook, running_stack, task_results

PLAYBOOKS = os.path.join(ROOT, "playbooks")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("incident")) as stack:
        yield stack


def inventory(tmp_path, stack):
    ledger = tmp_path / "releases.jsonl"
    ledger.write_text(json.dumps(dict(action="deploy", version="1.0.0", result="succeeded")) + "\n")
    host = dict(
        ansible_connection="local", ansible_python_interpreter=os.path.join(ROOT, ".venv", "bin", "python"),
        incident_compose_project=stack.name, incident_postgres=True, incident_container=stack.postgres,
        incident_dest=str(tmp_path / "incidents"), incident_ledgers=[str(ledger)],
        incident_health_checks=[dict(name="api", type="http", url=stack.url + "/health", timeout=2),
                                dict(name="proxy", type="container", container=stack.name + "-proxy")],
        incident_project_dir=stack.dir, incident_health_timeout=60,
        incident_forensic_backup=True, incident_forensic_database="app",
        incident_forensic_dest=str(tmp_path / "forensic"),
        report_ledger_path=str(tmp_path / "ledger.jsonl"), report_metrics_dir="")
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"all": {"children": {"db": {"hosts": {"db1": host}}}}}))
    return str(path)


def test_the_evidence_of_a_stopped_api_names_it_and_the_restart_brings_it_back(stack, tmp_path):
    subprocess.run(["docker", "stop"] + stack.api_containers(), check=True, capture_output=True)
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "incident.yml"), inventory(tmp_path, stack),
                                 dict(incident_name="api-down"))
    assert rc == 0, json.dumps(out)[-2000:]
    evidence = task_results(out, "Bundle the evidence")
    bundle = evidence["path"]
    assert os.stat(bundle).st_mode & 0o777 == 0o600
    with open(bundle, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == evidence["sha256"]
    assert open(bundle + ".sha256").read().split()[0] == evidence["sha256"]
    with tarfile.open(bundle) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames()}
        texts = {n: tar.extractfile(m).read().decode() for n, m in zip(tar.getnames(), tar.getmembers())}
    api = [c for c in evidence["containers"] if c["service"] == "api"][0]["name"]
    for part in ("containers.json", "inspect/%s.json" % api, "logs/%s.log" % api, "host.json", "health.json",
                 "postgres/activity.json", "postgres/locks.json", "postgres/sizes.json", "ledgers/releases.jsonl",
                 "stats/%s.json" % stack.postgres):
        assert part in names, (part, sorted(names))
    assert "errors.json" not in names
    # the forensic backup was taken first, and the bundle says where it is
    forensic = json.loads(texts[[n for n in texts if n.endswith("/extra.json")][0]])["forensic_backup"]
    assert forensic.startswith(str(tmp_path / "forensic")) and os.path.exists(forensic)
    # the API's database password is in its environment: redacted in the inspect output
    assert all("deploy-test-password" not in text for text in texts.values())
    assert "DATABASE_PASSWORD=<redacted>" in texts[[n for n in texts if n.endswith("inspect/%s.json" % api)][0]]
    assert [c["service"] for c in evidence["failing"]] == ["api"]
    summary = open(bundle[:-len(".tar.gz")] + ".md").read()
    assert "**S1**" in summary and "failing: api" in summary and evidence["sha256"] in summary
    assert "| api | critical |" in summary
    ledger = [json.loads(line) for line in open(tmp_path / "ledger.jsonl")]
    assert ledger[-1]["operation"] == "incident" and ledger[-1]["summary"].startswith("S1 (suggested) api-down")

    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "restart_service.yml"), inventory(tmp_path, stack),
                                 dict(incident_restart_services=["api"]))
    assert rc == 0, json.dumps(out)[-2000:]
    assert task_results(out, "Wait until the stack is healthy")["status"] == "healthy"
    assert stack.version() == "1.0.0"


def test_check_mode_collects_nothing(stack, tmp_path):
    rc, out, _err = run_playbook(os.path.join(PLAYBOOKS, "incident.yml"), inventory(tmp_path, stack), {}, check=True)
    assert rc == 0
    assert not os.path.exists(tmp_path / "incidents")
    assert "would write" in task_results(out, "Bundle the evidence")["msg"]
