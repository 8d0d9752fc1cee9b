"""The idle-connection mitigation against a real PostgreSQL: it ends only old idle-in-transaction sessions of
ordinary roles, never a superuser's, a fresh one or its own; check mode only lists them."""

import subprocess
import time
import uuid

import pytest

from conftest import run_module, wait_for

APP_PASSWORD = "app-" + uuid.uuid4().hex[:10]


class Session:
    """A psql session held open in a state: idle, or idle in a transaction."""

    def __init__(self, pg, user, password, application, in_transaction):
        env = dict(pg.env(), PGUSER=user, PGPASSWORD=password, PGAPPNAME=application)
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-d", "app"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        self.proc.stdin.write("%sSELECT 1;\n\\echo ready\n" % ("BEGIN;\n" if in_transaction else ""))
        self.proc.stdin.flush()
        while self.proc.stdout.readline().strip() != "ready":
            pass

    def alive(self, pg, application):
        return pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'"
                       % application) == "1"

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def sessions(host_pg):
    host_pg.psql("postgres", "DROP ROLE IF EXISTS idle_app")
    host_pg.psql("postgres", "CREATE ROLE idle_app LOGIN PASSWORD '%s'" % APP_PASSWORD)
    tag = uuid.uuid4().hex[:6]
    names = dict(superuser="su-" + tag, old="old-" + tag, old_idle="oldidle-" + tag, fresh="fresh-" + tag)
    held = {
        "superuser": Session(host_pg, "postgres", host_pg.password, names["superuser"], True),
        "old": Session(host_pg, "idle_app", APP_PASSWORD, names["old"], True),
        "old_idle": Session(host_pg, "idle_app", APP_PASSWORD, names["old_idle"], False),
    }
    time.sleep(6)
    held["fresh"] = Session(host_pg, "idle_app", APP_PASSWORD, names["fresh"], True)
    yield held, names
    for session in held.values():
        session.close()
    # a role left behind would end up in every later dump of the shared cluster
    wait_for(lambda: host_pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'idle_app'") == "0")
    host_pg.psql("postgres", "DROP ROLE idle_app")


def test_only_old_idle_transactions_of_ordinary_roles_are_ended(host_pg, sessions):
    held, names = sessions
    args = dict(host_pg.connection(), older_than="5s", exclude_applications=["demo-api"])
    listed = run_module("pg_idle_sessions", args, check_mode=True)
    assert not listed.get("failed"), listed.get("msg")
    mine = [s for s in listed["sessions"] if s["application"] in names.values()]
    assert [s["application"] for s in mine] == [names["old"]] and not mine[0]["terminated"]
    assert mine[0]["user"] == "idle_app" and mine[0]["state"] == "idle in transaction" and mine[0]["seconds"] >= 5
    assert all(held[k].alive(host_pg, names[k]) for k in names)

    ended = run_module("pg_idle_sessions", args)
    assert ended["changed"] and [s["application"] for s in ended["sessions"] if s["application"] in names.values()] \
        == [names["old"]]
    wait_for(lambda: not held["old"].alive(host_pg, names["old"]))
    for kept in ("superuser", "old_idle", "fresh"):
        assert held[kept].alive(host_pg, names[kept]), kept

    # idle (not in a transaction) sessions go only when asked for
    idle = run_module("pg_idle_sessions", dict(args, states=["idle"], users=["idle_app"]))
    assert [s["application"] for s in idle["sessions"] if s["application"] in names.values()] == [names["old_idle"]]
    wait_for(lambda: not held["old_idle"].alive(host_pg, names["old_idle"]))
    assert held["superuser"].alive(host_pg, names["superuser"]) and held["fresh"].alive(host_pg, names["fresh"])


def test_bad_input_is_refused(host_pg):
    result = run_module("pg_idle_sessions", dict(host_pg.connection(), older_than="a while"))
    assert result["failed"] and result["msg"].startswith("older_than:")
    result = run_module("pg_idle_sessions", dict(host_pg.connection(), older_than="1m", states=["busy"]))
    assert result["failed"] and "states" in result["msg"]
