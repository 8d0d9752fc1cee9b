"""Every shipped playbook parses (ansible-playbook --syntax-check), the AWX wrappers and configuration
included, and runs by its collection name; the execution environment definition is one ansible-builder
accepts; the Semaphore project definition only references what it defines and playbooks that exist."""

import glob
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import COLLECTIONS, ROOT

BIN = os.path.dirname(sys.executable)
PLAYBOOKS = sorted(
    glob.glob(os.path.join(ROOT, "playbooks", "*.yml")) + glob.glob(os.path.join(ROOT, "awx", "playbooks", "*.yml"))
    + [os.path.join(ROOT, "awx", "configure.yml")])


def syntax_check(playbook):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS)
    return subprocess.run([os.path.join(BIN, "ansible-playbook"), "--syntax-check", "-i", "localhost,", playbook],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=[os.path.relpath(p, ROOT) for p in PLAYBOOKS])
def test_the_playbook_passes_the_syntax_check(playbook):
    proc = syntax_check(playbook)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["backup", "restore", "restore_drill", "health", "schedule", "terminate_idle_sessions",
                                  "maintenance"])
def test_the_playbook_is_reachable_by_its_collection_name(name):
    proc = syntax_check("stackops.runbook." + name)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_builder_accepts_the_execution_environment(tmp_path):
    proc = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-f",
                           os.path.join(ROOT, "awx", "execution-environment.yml"), "-c", str(tmp_path / "context")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (tmp_path / "context" / "Dockerfile").read_text()
    assert "quay.io/ansible/awx-ee:latest" in containerfile


def test_the_semaphore_project_references_only_what_it_defines():
    with open(os.path.join(ROOT, "semaphore", "project.json")) as fh:
        project = json.load(fh)
    names = {kind: {item["name"] for item in project[kind]} for kind in
             ("repositories", "inventories", "environments", "keys", "views")}
    scheduled = {}
    for template in project["templates"]:
        assert template["repository"] in names["repositories"]
        assert template["inventory"] in names["inventories"]
        assert template["environment"] in names["environments"]
        assert template["view"] in names["views"]
        assert os.path.exists(os.path.join(ROOT, template["playbook"])), template["playbook"]
        for vault in template["vaults"]:
            assert vault["vault_key"] in names["keys"]
        if template["cron"]:
            fields = template["cron"].split()
            assert len(fields) == 5 and all(re.fullmatch(r"\*|\d+(,\d+)*", f) for f in fields), template["cron"]
            scheduled[template["name"]] = template["cron"]
        if template["survey_vars"]:
            assert {v["name"] for v in json.loads(template["survey_vars"])} >= {"restore_confirm"}
    assert scheduled == {"backup": "0 3 * * *", "restore drill": "0 5 * * 0", "health": "15 * * * *",
                         "maintenance": "0 6 * * 0", "rotate secrets": "0 4 1 1,4,7,10 *"}
    for inventory in project["inventories"]:
        assert os.path.exists(os.path.join(ROOT, inventory["inventory"]))
