# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to stackops.runbook: not a public API, may change without notice.

One rotation of one secret (secret_rotate's engine), in AWS Secrets Manager's four steps: create a pending
value, set it on every target (a PostgreSQL role, env files, files; re-encryption), test it (the new login
works, the old one does not, the restarted services answer), finish (mirror it, promote it to current). A
failure after a change puts every target back on the current value (``revert``)."""

from __future__ import annotations

import re
import time

from ansible_collections.stackops.runbook.plugins.module_utils import _health
from ansible_collections.stackops.runbook.plugins.module_utils import _secrets as sec
from ansible_collections.stackops.runbook.plugins.module_utils._compose import ComposeProject
from ansible_collections.stackops.runbook.plugins.module_utils._docker import docker_client
from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import ClientContext, PsqlSession, ident

STEPS = ["create", "set", "test", "finish"]

# names of keys that encrypt data at rest: rotating them without re-encryption makes that data unreadable
DATA_KEY_NAMES = re.compile(r"ENCRYPT|CIPHER|FERNET|DATA_?KEY|MASTER_?KEY", re.I)


class RotationFailed(RunbookError):
    """A rotation step failed; ``kept`` says whether the targets are back on the current value."""

    def __init__(self, message, result, kept):
        super().__init__(message, result)
        self.kept = kept


class Rotation:
    """One run of the rotation of one secret."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.store = sec.VersionStore(self.p["state_dir"], self.p["name"])
        self.done, self.health = [], None
        self.container_address = None  # found once, on the first login test

    # ------------------------------------------------------------ targets

    def describe_targets(self):
        found = ["%s %s" % (t["path"], t["variable"]) for t in self.p["env_files"]] + list(self.p["files"])
        return (["postgres role %s" % self.p["postgres_role"]] if self.p["postgres_role"] else []) + found

    def value_in_files(self):
        for target in self.p["env_files"]:
            value = sec.read_env_value(target["path"], target["variable"])
            if value is not None:
                return value
        for path in self.p["files"]:
            value = sec.read_file_value(path)
            if value is not None:
                return value
        return None

    def write_files(self, value):
        for target in self.p["env_files"]:
            if sec.read_env_value(target["path"], target["variable"]) != value:
                sec.write_env_value(target["path"], target["variable"], value)
        for path in self.p["files"]:
            if sec.read_file_value(path) != value:
                sec.write_file_value(path, value)

    def files_hold(self, value):
        return (all(sec.read_env_value(t["path"], t["variable"]) == value for t in self.p["env_files"])
                and all(sec.read_file_value(path) == value for path in self.p["files"]))

    # ------------------------------------------------------------ PostgreSQL

    def admin_sql(self, sql):
        with ClientContext(self.p) as runner:
            session = PsqlSession(runner, "postgres")
            try:
                return session.query(sql)
            finally:
                session.close()

    def login_host(self):
        """Where the login test connects: inside a container, its own network address, as the app does - a
        PostgreSQL image trusts connections over loopback (initdb's default), so 127.0.0.1 would prove nothing."""
        if self.p["test_login_host"] or self.p["login_host"] or not self.p["container"]:
            return self.p["test_login_host"] or self.p["login_host"]
        if self.container_address is None:
            networks = docker_client(self.p["docker_host"]).api.inspect_container(self.p["container"])[
                "NetworkSettings"].get("Networks") or {}
            addresses = [n.get("IPAddress") for n in networks.values() if n.get("IPAddress")]
            if not addresses:
                raise sec.SecretError("container %s has no network address to test the login on: set test_login_host"
                                      % self.p["container"])
            self.container_address = addresses[0]
        return self.container_address

    def logs_in(self, password):
        """Whether the role logs in with ``password`` over TCP (so the password is really checked)."""
        host = self.login_host()
        params = dict(self.p, login_user=self.p["postgres_role"], login_password=password, login_host=host,
                      login_unix_socket=None)
        try:
            with ClientContext(params) as runner:
                session = PsqlSession(runner, self.p["test_database"])
                try:
                    return session.scalar("SELECT 1;") == "1"
                finally:
                    session.close()
        except RunbookError:  # psql refused the login, or could not connect: either way no login
            return False

    def set_role_password(self, password):
        # the verifier, never the password: the server's statement log and pg_stat_statements see only that
        verifier = sec.scram_verifier(password)
        self.admin_sql("ALTER ROLE %s PASSWORD '%s';" % (ident(self.p["postgres_role"]), verifier))

    # ------------------------------------------------------------ services

    def restart_and_check(self):
        if not self.p["restart_services"]:
            return None
        project = ComposeProject(self.module, docker_client(self.p["docker_host"]), self.p["project_src"],
                                 project_name=self.p["project_name"], docker_host=self.p["docker_host"])
        project.run(["up", "-d", "--no-deps"] + self.p["restart_services"], what="recreating the services")
        if not self.p["health_checks"]:
            return None
        return _health.wait_until_up(self.p["health_checks"], self.p["health_timeout"], 1, self.p["docker_host"])

    # ------------------------------------------------------------ steps

    def current_value(self):
        current = self.store.get("current")
        if current is None:
            current = self.p["current_value"] or self.value_in_files()
        if current is None:
            raise sec.SecretError("no current value of %s: the targets hold none and the store is empty; give "
                                  "current_value (the value in use now)" % self.p["name"])
        return current

    def create(self, current):
        pending = self.store.get("pending")
        if pending is not None and (self.p["value"] is None or self.p["value"] == pending):
            self.done.append("create (resumed)")
            return pending
        if pending is not None and self.applied_anywhere(pending):
            raise sec.SecretError("an interrupted rotation of %s already set its pending value (fingerprint %s) on "
                                  "some targets: run again without value to complete it" % (
                                      self.p["name"], sec.fingerprint(pending)))
        pending = self.p["value"] or sec.generate(self.p["length"], self.p["alphabet"])
        if pending == current:
            raise sec.SecretError("value is the current value of %s: give a new one, or none to generate one"
                                  % self.p["name"])
        if self.store.get("current") is None:
            self.store.put("current", current)  # adopted: from now on the store knows it
        self.store.put("pending", pending)
        self.module.no_log_values.add(pending)
        self.done.append("create")
        return pending

    def applied_anywhere(self, pending):
        return (self.p["postgres_role"] and self.logs_in(pending)) or any(
            sec.read_env_value(t["path"], t["variable"]) == pending for t in self.p["env_files"]) or any(
            sec.read_file_value(path) == pending for path in self.p["files"])

    def set(self, pending, current):
        if self.p["postgres_role"]:
            if self.logs_in(pending):
                self.done.append("set postgres (resumed)")
            elif self.logs_in(current) or self.p["current_value"] or self.store.get("current") is not None:
                self.set_role_password(pending)
            else:
                raise sec.SecretError("role %s logs in with neither the pending nor the current value of %s"
                                      % (self.p["postgres_role"], self.p["name"]))
        self.write_files(pending)
        if self.p["reencrypt_command"]:
            env = dict(STACKOPS_OLD_SECRET=current, STACKOPS_NEW_SECRET=pending)
            rc, _out, err = self.module.run_command(self.p["reencrypt_command"], environ_update=env,
                                                    cwd=self.p["project_src"] or None)
            if rc != 0:
                raise sec.SecretError("reencrypt_command failed (rc=%s): %s" % (rc, (err or "").strip()[-500:]))
            self.done.append("reencrypt")
        self.done.append("set")

    def test(self, pending, current):
        if self.p["postgres_role"]:
            if not self.logs_in(pending):
                raise sec.SecretError("role %s cannot log in with the new password" % self.p["postgres_role"])
            if self.logs_in(current):
                raise sec.SecretError("role %s still logs in with the old password: does the server trust connections "
                                      "from %s (pg_hba.conf)? Set test_login_host to an address whose connections "
                                      "need a password" % (self.p["postgres_role"], self.login_host()))
        self.health = self.restart_and_check()
        self.done.append("test")

    def finish(self, pending):
        if self.p["mirror"]:
            mirror(self.p["mirror"], pending)
        self.store.promote()
        self.done.append("finish")

    def revert(self, current):
        """Put every target back on ``current`` and check the services answer; returns (back, summary)."""
        problems = []
        try:
            if self.p["postgres_role"] and not self.logs_in(current):
                self.set_role_password(current)
        except Exception as exc:  # pylint: disable=broad-except
            problems.append("postgres role: %s" % exc)
        try:
            self.write_files(current)
        except Exception as exc:  # pylint: disable=broad-except
            problems.append("files: %s" % exc)
        try:
            self.health = self.restart_and_check() or self.health
        except Exception as exc:  # pylint: disable=broad-except
            problems.append("services: %s" % exc)
        self.store.drop("pending")
        return not problems, "; ".join(problems) or (self.health or {}).get("summary", "targets reverted")

    def hide_values(self):
        """Every value this run knows is masked in its results (no_log); returns the current value."""
        for stage in sec.STAGES:
            value = self.store.get(stage)
            if value:
                self.module.no_log_values.add(value)
        current = self.current_value()
        self.module.no_log_values.add(current)
        return current

    def too_recent(self, min_age):
        """True when the last rotation is younger than ``min_age`` seconds (None: never); an interrupted
        rotation always goes on."""
        if not min_age or self.store.has("pending"):
            return False
        rotated = self.store.rotated_at()
        return rotated is not None and time.time() - rotated < min_age

    def run(self, current):
        """The asked steps; on failure after a change, the targets go back to ``current``."""
        p, changed_anything = self.p, False
        try:
            pending = self.create(current) if "create" in p["steps"] else self.store.get("pending")
            if pending is None:
                raise sec.SecretError("no pending value of %s: run the create step first" % p["name"])
            self.module.no_log_values.add(pending)
            if "set" in p["steps"]:
                changed_anything = True
                self.set(pending, current)
            if "test" in p["steps"]:
                self.test(pending, current)
            if "finish" in p["steps"]:
                if "test" not in p["steps"] and not self.files_hold(pending):
                    raise sec.SecretError("finish before set: the targets do not hold the pending value yet")
                self.finish(pending)
        except Exception as exc:  # pylint: disable=broad-except
            # any failure, ours or a library's: what was changed goes back
            raise self.failure(exc, changed_anything, current)
        rotated = "finish" in self.done
        return self.result(changed=True, rotated=rotated, msg="%s %s" % (p["name"], "rotated" if rotated else (
            "rotation advanced to %s; run the remaining steps" % self.done[-1])))

    def failure(self, exc, changed_anything, current):
        if not changed_anything:
            return RotationFailed(str(exc), self.result(rotated=False, changed="create" in self.done),
                                  "Nothing was changed before the failure.")
        back, summary = self.revert(current)
        kept = ("Reverted: every target is back on the current value and the services answer (%s). The refused value "
                "was dropped; run again to rotate." % summary) if back else (
            "THE REVERT DID NOT COMPLETE: %s. The current value is kept in %s; put it back by hand." % (
                summary, self.store.directory))
        return RotationFailed(str(exc), self.result(changed=True, rotated=False, reverted=back), kept)

    def result(self, **extra):
        pending = self.store.get("pending")
        return dict(fingerprints=self.store.fingerprints(), steps_done=self.done, health=self.health,
                    targets=[dict(target=t, updated=pending is None and "finish" in self.done)
                             for t in self.describe_targets()], **extra)


def mirror(settings, value):
    import boto3
    import botocore.exceptions
    session = boto3.session.Session(aws_access_key_id=settings.get("access_key"),
                                    aws_secret_access_key=settings.get("secret_key"),
                                    region_name=settings.get("region") or "us-east-1")
    client = session.client(settings["service"], endpoint_url=settings.get("endpoint_url"))
    try:
        if settings["service"] == "ssm":
            extra = {"KeyId": settings["kms_key_id"]} if settings.get("kms_key_id") else {}
            client.put_parameter(Name=settings["name"], Value=value, Type="SecureString", Overwrite=True, **extra)
            return
        try:
            client.put_secret_value(SecretId=settings["name"], SecretString=value)
        except client.exceptions.ResourceNotFoundException:
            extra = {"KmsKeyId": settings["kms_key_id"]} if settings.get("kms_key_id") else {}
            client.create_secret(Name=settings["name"], SecretString=value, **extra)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise sec.SecretError("cannot mirror to %s %s: %s" % (settings["service"], settings["name"], exc))
