"""awx/README.md describes the job templates awx/configure.yml really defines."""

import json
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


DAYS = dict(SU="0", MO="1", TU="2", WE="3", TH="4", FR="5", SA="6")
SYSTEMD_DAYS = dict(Sun="0", Mon="1", Tue="2", Wed="3", Thu="4", Fri="5", Sat="6")


def rrule_as_cron(rrule):
    """The cron expression of the AWX schedules' rrules (DTSTART's time; DAILY, HOURLY, WEEKLY;BYDAY,
    MONTHLY;INTERVAL;BYMONTHDAY)."""
    start, rule = rrule.split(" RRULE:")
    stamp = start.split(":")[-1]
    month, minute, hour = int(stamp[4:6]), str(int(stamp[11:13])), str(int(stamp[9:11]))
    parts = dict(item.split("=") for item in rule.split(";"))
    interval = int(parts.get("INTERVAL", "1"))
    if parts["FREQ"] == "HOURLY":
        return "%s * * * *" % minute
    if parts["FREQ"] == "DAILY":
        return "%s %s * * *" % (minute, hour)
    if parts["FREQ"] == "WEEKLY":
        return "%s %s * * %s" % (minute, hour, ",".join(DAYS[d] for d in parts["BYDAY"].split(",")))
    assert parts["FREQ"] == "MONTHLY" and "BYDAY" not in parts, rrule  # "first Monday" has no cron expression
    months = ",".join(str(m) for m in range(month, 13, interval)) if interval > 1 else "*"
    return "%s %s %s %s *" % (minute, hour, parts["BYMONTHDAY"], months)


def on_calendar_as_cron(spec):
    """The cron expression of the systemd OnCalendar forms schedule.yml uses: [DOW] *-MM-DD HH:MM:SS."""
    fields = spec.split()
    dow = SYSTEMD_DAYS[fields.pop(0)] if len(fields) == 3 else "*"
    _year, month, day = fields[0].split("-")
    hour, minute, _second = fields[1].split(":")
    return "%s %s %s %s %s" % (cron_field(minute), cron_field(hour), cron_field(day), cron_field(month), dow)


def cron_field(field):
    return "*" if field == "*" else ",".join(str(int(v)) for v in field.split(","))


def test_awx_semaphore_and_schedule_yml_run_the_same_jobs_at_the_same_times():
    with open(os.path.join(ROOT, "awx", "configure.yml")) as fh:
        (play,) = yaml.safe_load(fh)
    awx = {os.path.basename(t["playbook"]): rrule_as_cron(t["schedule"]["rrule"])
           for t in play["vars"]["stackops_awx_templates"] if "schedule" in t}
    with open(os.path.join(ROOT, "semaphore", "project.json")) as fh:
        semaphore = {os.path.basename(t["playbook"]): t["cron"] for t in json.load(fh)["templates"] if t["cron"]}
    with open(os.path.join(ROOT, "playbooks", "schedule.yml")) as fh:
        (schedule_play,) = yaml.safe_load(fh)
    (task,) = schedule_play["tasks"]
    timers = {item["name"] + ".yml": item for item in task["loop"]}
    assert {name: item["cron"] for name, item in timers.items()} == awx == semaphore
    assert {name: on_calendar_as_cron(item["on_calendar"]) for name, item in timers.items()} == awx
    # the maintenance, the rotation and the drill are scheduled, not only the backup and health
    assert set(awx) == {"backup.yml", "restore_drill.yml", "health.yml", "maintenance.yml", "rotate_secrets.yml"}
    assert awx["rotate_secrets.yml"] == "0 4 1 1,4,7,10 *"
