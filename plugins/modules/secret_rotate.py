#!/usr/bin/python
# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: secret_rotate
short_description: Rotate a secret in env files, secret files and a PostgreSQL role, reverting on any failure
version_added: 0.1.0
description:
  - The runbooks' quarterly rotation (C(openssl rand -base64 32), edit C(.env.production), C(ALTER USER ... PASSWORD)
    with the password in the shell history, restart, hope) in AWS Secrets Manager's four steps.
  - "C(create): a new value (generated, or O(value)) is written as C(pending) in the secret's version store on the
    host (O(state_dir)/O(name), 0700, one 0600 file per stage) before anything changes, so it is never lost."
  - "C(set): the PostgreSQL role's password is changed with C(ALTER ROLE ... PASSWORD) and a SCRAM-SHA-256 verifier
    computed here, so the plaintext never reaches the server or its logs; then the O(env_files) variables and the
    O(files) get the new value (every other line and the files' modes kept)."
  - "C(test): the role logs in with the new password (and no longer with the old one); the O(restart_services) are
    recreated (C(compose up -d), so they read the new value) and must pass the O(health_checks)."
  - "C(finish): the value is mirrored to AWS Secrets Manager or SSM Parameter Store (O(mirror)) and promoted:
    C(previous) <- C(current) <- C(pending)."
  - Any failure in C(set), C(test) or C(finish) reverts every target to the current value, recreates the services and
    checks that they answer again; the refused value is dropped and the task fails saying whether the service is back.
  - Re-runnable. A run that was killed leaves C(pending) in place; the next run finds which targets already have it
    (the role logs in with C(pending), else with C(current)) and completes the rotation.
  - The first run adopts the value the first env file or file holds as C(current) (or O(current_value)).
  - Values never appear in results or logs; results carry fingerprints (the first 12 hex digits of a sha256).
author:
  - stackops.runbook contributors (@stackops)
extends_documentation_fragment:
  - stackops.runbook.postgres
  - stackops.runbook.container
  - stackops.runbook.docker
  - stackops.runbook._attributes.actiongroup_postgres_docker
attributes:
  check_mode:
    support: full
    description: Says what would rotate (targets, fingerprints, steps) and changes nothing.
  diff_mode:
    support: none
    description: Secrets are never diffed.
options:
  name:
    description: The secret's name (its folder in O(state_dir)), such as C(app_db_password).
    type: str
    required: true
  state_dir:
    description: Where the versions are kept on the host.
    type: path
    default: /var/lib/stackops-runbook/secrets
  value:
    description: The new value; default a generated one of O(length) characters of O(alphabet).
    type: str
  current_value:
    description: The value in use now, for a first run whose targets cannot tell it (only a PostgreSQL role).
    type: str
  length:
    description: Length of a generated value.
    type: int
    default: 32
  alphabet:
    description: Characters of a generated value (C(alnum) is safe in env files, URLs and connection strings).
    type: str
    choices: [alnum, urlsafe, hex]
    default: alnum
  min_age:
    description:
      - Skip the rotation when the current value was set less than this long ago (C(80d)), so a scheduled run that
        is retried changes nothing. Default always rotate.
    type: str
  encrypts_data:
    description:
      - Whether the secret is a key that encrypts data at rest (an C(ENCRYPTION_KEY)); data encrypted with the old
        value cannot be read with a new one. Default is to detect it by the names (O(name) and the env variables)
        containing C(ENCRYPT), C(CIPHER), C(FERNET), C(DATA_KEY) or C(MASTER_KEY).
      - Such a key is only rotated with O(reencrypt_command) or O(accept_unreadable_data); otherwise the task fails
        before changing anything.
    type: bool
  reencrypt_command:
    description:
      - A command (argv list, no shell) that re-encrypts the data from the old key to the new one, run on the
        managed host after the new value is set and before the services are restarted and tested. It gets the
        values in its environment as E(STACKOPS_OLD_SECRET) and E(STACKOPS_NEW_SECRET), never in argv. A failure
        reverts the rotation.
    type: list
    elements: str
  accept_unreadable_data:
    description:
      - Rotate a key that encrypts data at rest without re-encrypting, accepting that data encrypted with the old
        value becomes unreadable (for example after an exposure, when that data is to be discarded).
    type: bool
    default: false
  steps:
    description: The steps to run; the default runs the whole rotation. A partial run leaves C(pending) for the next.
    type: list
    elements: str
    choices: [create, set, test, finish]
    default: [create, set, test, finish]
  env_files:
    description: Env file variables that hold the secret.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The env file.
        type: path
        required: true
      variable:
        description: The variable.
        type: str
        required: true
  files:
    description: Files that hold only the secret (one-file-per-secret directories, docker secrets); created 0600.
    type: list
    elements: path
    default: []
  postgres_role:
    description: The PostgreSQL role whose password is the secret; the connection options say how to reach the server.
    type: str
  test_login_host:
    description:
      - Host the role logs in to in the C(test) step (over TCP, so the password is really checked). Default O(login_host),
        or with O(container) the container's own network address (its loopback is usually trusted, as initdb sets it up).
    type: str
  test_database:
    description: Database the role logs in to in the C(test) step.
    type: str
    default: postgres
  project_src:
    description: The compose project of O(restart_services).
    type: path
  project_name:
    description: The compose project name; default the folder's name.
    type: str
  restart_services:
    description: Services recreated in the C(test) step (and after a revert) so they read the new value.
    type: list
    elements: str
    default: []
  health_checks:
    description: health_probe checks the services must pass after the restart (warnings allowed).
    type: list
    elements: dict
    default: []
  health_timeout:
    description: Seconds to wait for O(health_checks).
    type: int
    default: 120
  mirror:
    description: Mirror the value to AWS Secrets Manager or SSM Parameter Store in the C(finish) step.
    type: dict
    suboptions:
      service:
        description: C(secretsmanager) or C(ssm).
        type: str
        choices: [secretsmanager, ssm]
        required: true
      name:
        description: The secret's name or ARN, or the parameter's name.
        type: str
        required: true
      region:
        description: The AWS region.
        type: str
        default: us-east-1
      endpoint_url:
        description: Another endpoint (a VPC endpoint, an emulator).
        type: str
      access_key:
        description: Access key id; default the usual AWS credential chain.
        type: str
      secret_key:
        description: Secret access key.
        type: str
      kms_key_id:
        description: KMS key of a new secret or SecureString parameter.
        type: str
requirements:
  - The Python docker SDK (C(docker)) and PyYAML with O(restart_services) or O(container); boto3 with O(mirror).
seealso:
  - module: stackops.runbook.health_probe
"""

EXAMPLES = r"""
- name: Rotate the app's database password (role app, .env of the stack), restart the API, check it
  stackops.runbook.secret_rotate:
    name: app_db_password
    postgres_role: app
    container: myapp-postgres-1
    env_files:
      - {path: /srv/myapp/.env, variable: DATABASE_PASSWORD}
    project_src: /srv/myapp
    restart_services: [api, worker]
    health_checks:
      - {name: ready, type: http, url: "http://127.0.0.1:8080/health/ready"}
    mirror: {service: secretsmanager, name: myapp/db-password}
    min_age: 80d

- name: Show what would rotate
  stackops.runbook.secret_rotate:
    name: session_secret
    env_files: [{path: /srv/myapp/.env, variable: SESSION_SECRET}]
  check_mode: true
"""

RETURN = r"""
rotated:
  description: Whether the rotation finished in this run.
  returned: always
  type: bool
  sample: true
fingerprints:
  description: Fingerprints of the stages after the run (the first 12 hex digits of the values' sha256).
  returned: always
  type: dict
  sample: {"current": "4be1f0a9c2d3", "pending": null, "previous": "9a0c11e2f3b4"}
steps_done:
  description: The steps this run did (a step already done by an interrupted run is listed as resumed).
  returned: always
  type: list
  elements: str
  sample: [create, set, test, finish]
targets:
  description: The targets and whether each holds the new value.
  returned: always
  type: list
  elements: dict
  sample: [{"target": "postgres role app", "updated": true}, {"target": "/srv/myapp/.env DATABASE_PASSWORD", "updated": true}]
reverted:
  description: On failure, whether the targets were put back on the current value and the services answer again.
  returned: on failure after a change
  type: bool
  sample: true
health:
  description: The last health round after the restart.
  returned: when services were restarted
  type: dict
  sample: {"status": "healthy", "summary": "healthy: 1/1 checks pass"}
"""

import os
import re
import time
import traceback

from ansible_collections.stackops.runbook.plugins.module_utils import _health
from ansible_collections.stackops.runbook.plugins.module_utils import _secrets as sec
from ansible_collections.stackops.runbook.plugins.module_utils._compose import ComposeError, ComposeProject
from ansible_collections.stackops.runbook.plugins.module_utils._module import (
    RunbookModule,
    parse_duration,
    require_libraries,
)
from ansible_collections.stackops.runbook.plugins.module_utils._runner import CommandError
from ansible_collections.stackops.runbook.plugins.module_utils._docker import ContainerError, docker_client
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import (
    ClientContext,
    PostgresError,
    PsqlSession,
    postgres_common_argument_spec,
)

STEPS = ["create", "set", "test", "finish"]


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
        except (PostgresError, CommandError):
            return False

    def set_role_password(self, password):
        role = '"%s"' % self.p["postgres_role"].replace('"', '""')
        # the verifier, never the password: the server's statement log and pg_stat_statements see only that
        self.admin_sql("ALTER ROLE %s PASSWORD '%s';" % (role, sec.scram_verifier(password)))

    # ------------------------------------------------------------ services

    def restart_and_check(self):
        if not self.p["restart_services"]:
            return None
        project = ComposeProject(self.module, docker_client(self.p["docker_host"]), self.p["project_src"],
                                 project_name=self.p["project_name"])
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


# names of keys that encrypt data at rest: rotating them without re-encryption makes that data unreadable
DATA_KEY_NAMES = re.compile(r"ENCRYPT|CIPHER|FERNET|DATA_?KEY|MASTER_?KEY", re.I)


def main():
    spec = postgres_common_argument_spec()
    spec.update(
        name=dict(type="str", required=True),
        state_dir=dict(type="path", default="/var/lib/stackops-runbook/secrets"),
        value=dict(type="str", no_log=True),
        current_value=dict(type="str", no_log=True),
        length=dict(type="int", default=32),
        alphabet=dict(type="str", choices=list(sec.ALPHABETS), default="alnum"),
        min_age=dict(type="str"),
        steps=dict(type="list", elements="str", choices=STEPS, default=STEPS),
        env_files=dict(type="list", elements="dict", default=[], options=dict(
            path=dict(type="path", required=True), variable=dict(type="str", required=True))),
        files=dict(type="list", elements="path", default=[]),
        postgres_role=dict(type="str"),
        test_login_host=dict(type="str"),
        test_database=dict(type="str", default="postgres"),
        project_src=dict(type="path"),
        project_name=dict(type="str"),
        restart_services=dict(type="list", elements="str", default=[]),
        health_checks=dict(type="list", elements="dict", default=[]),
        health_timeout=dict(type="int", default=120),
        encrypts_data=dict(type="bool"),
        reencrypt_command=dict(type="list", elements="str"),
        accept_unreadable_data=dict(type="bool", default=False),
        mirror=dict(type="dict", options=dict(
            service=dict(type="str", choices=["secretsmanager", "ssm"], required=True),
            name=dict(type="str", required=True),
            region=dict(type="str", default="us-east-1"),
            endpoint_url=dict(type="str"),
            access_key=dict(type="str", no_log=False),
            secret_key=dict(type="str", no_log=True),
            kms_key_id=dict(type="str", no_log=False))),
    )
    module = RunbookModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    if p["restart_services"] and not p["project_src"]:
        module.fail_json(msg="restart_services needs project_src (the folder of the compose project)")
    if not (p["postgres_role"] or p["env_files"] or p["files"]):
        module.fail_json(msg="no target: give postgres_role, env_files or files (where the secret is used)")
    if p["length"] < 16:
        module.fail_json(msg="length=%s is too short for a secret: use 16 or more" % p["length"])
    encrypts_data = p["encrypts_data"] if p["encrypts_data"] is not None else any(
        DATA_KEY_NAMES.search(n) for n in [p["name"]] + [t["variable"] for t in p["env_files"]])
    if encrypts_data and not (p["reencrypt_command"] or p["accept_unreadable_data"]):
        module.fail_json(msg="%s looks like a key that encrypts data at rest: after rotating it, data encrypted with "
                             "the old value cannot be read. Nothing was changed. Give reencrypt_command (re-encrypts "
                             "with STACKOPS_OLD_SECRET and STACKOPS_NEW_SECRET), or set accept_unreadable_data: true; "
                             "set encrypts_data: false if it does not encrypt data" % p["name"])
    require_libraries(module, docker=bool(p["restart_services"] or p["container"]), yaml=bool(p["restart_services"]),
                      boto3=bool(p["mirror"]))
    try:
        rotation = Rotation(module)
        for stage in sec.STAGES:
            value = rotation.store.get(stage)
            if value:
                module.no_log_values.add(value)
        current = rotation.current_value()
        module.no_log_values.add(current)
    except sec.SecretError as exc:
        module.fail_json(msg=str(exc))
    if p["min_age"] and rotation.store.get("pending") is None:
        try:
            age = parse_duration(p["min_age"])
        except ValueError as exc:
            module.fail_json(msg="min_age: %s" % exc)
        stamp = os.path.join(rotation.store.directory, "current")
        if os.path.exists(stamp) and time.time() - os.path.getmtime(stamp) < age:
            module.exit_json(changed=False, rotated=False, msg="%s was rotated less than %s ago: nothing to do" % (
                p["name"], p["min_age"]), **rotation.result())
    if module.check_mode:
        module.exit_json(changed=True, rotated=False, msg="check mode: would rotate %s (%s) on %s" % (
            p["name"], ", ".join(p["steps"]), ", ".join(rotation.describe_targets())), **rotation.result())
    changed_anything = False
    try:
        pending = rotation.create(current) if "create" in p["steps"] else rotation.store.get("pending")
        if pending is None:
            raise sec.SecretError("no pending value of %s: run the create step first" % p["name"])
        module.no_log_values.add(pending)
        if "set" in p["steps"]:
            changed_anything = True
            rotation.set(pending, current)
        if "test" in p["steps"]:
            rotation.test(pending, current)
        if "finish" in p["steps"]:
            if "test" not in p["steps"] and not rotation.files_hold(pending):
                raise sec.SecretError("finish before set: the targets do not hold the pending value yet")
            rotation.finish(pending)
    except (sec.SecretError, ComposeError, ContainerError, PostgresError, CommandError, _health.ProbeFailed) as exc:
        if not changed_anything:
            module.fail_json(msg="rotation of %s failed before changing anything: %s" % (p["name"], exc),
                             **rotation.result(rotated=False, changed="create" in rotation.done))
        back, summary = rotation.revert(current)
        module.fail_json(msg="rotation of %s failed: %s. %s" % (p["name"], exc, (
            "Reverted: every target is back on the current value and the services answer (%s). The refused value "
            "was dropped; run again to rotate." % summary) if back else (
            "THE REVERT DID NOT COMPLETE: %s. The current value is kept in %s; put it back by hand." % (
                summary, rotation.store.directory))),
            changed=True, rotated=False, reverted=back, **rotation.result())
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="rotation of %s failed unexpectedly: %s (pending is kept in %s; run again)" % (
            p["name"], exc, rotation.store.directory), exception=traceback.format_exc())
    rotated = "finish" in rotation.done
    module.exit_json(changed=True, rotated=rotated, msg="%s %s" % (p["name"], "rotated" if rotated else (
        "rotation advanced to %s; run the remaining steps" % rotation.done[-1])), **rotation.result())


if __name__ == "__main__":
    main()
