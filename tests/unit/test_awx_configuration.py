"""awx/README.md describes the job templates awx/configure.yml really defines."""

import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDS = {4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}


def templates():
    with open(os.path.join(ROOT, "awx", "configure.yml")) as fh:
        plays = yaml.safe_load(fh)
    found = []
    for play in plays:
        for value in (play.get("vars") or {}).values():
            if isinstance(value, list) and value and isinstance(value[0], dict) and "playbook" in value[0]:
                found += [item["name"] for item in value]
    return found


def test_the_readme_counts_and_names_every_job_template():
    names = templates()
    with open(os.path.join(ROOT, "awx", "README.md")) as fh:
        readme = fh.read().replace("\n   ", " ")
    assert "%s job templates" % WORDS[len(names)] in readme
    for name in names:
        assert name.replace("stackops ", "") in readme, name
