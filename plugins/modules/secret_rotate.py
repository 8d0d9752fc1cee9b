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

from ansible_collections.stackops.runbook.plugins.module_utils._errors import RunbookError
from ansible_collections.stackops.runbook.plugins.module_utils._module import RunbookModule, require_libraries
from ansible_collections.stackops.runbook.plugins.module_utils._postgres import postgres_common_argument_spec
from ansible_collections.stackops.runbook.plugins.module_utils._rotation import DATA_KEY_NAMES, STEPS, Rotation
from ansible_collections.stackops.runbook.plugins.module_utils import _secrets as sec


def argument_spec():
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
    return spec


def validate(module):
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


def main():
    module = RunbookModule(argument_spec=argument_spec(), supports_check_mode=True)
    validate(module)
    p = module.params
    min_age = module.seconds("min_age")
    try:
        rotation = Rotation(module)
        current = rotation.hide_values()
        if rotation.too_recent(min_age):
            module.exit_json(changed=False, rotated=False, msg="%s was rotated less than %s ago: nothing to do" % (
                p["name"], p["min_age"]), **rotation.result())
        if module.check_mode:
            module.exit_json(changed=True, rotated=False, msg="check mode: would rotate %s (%s) on %s" % (
                p["name"], ", ".join(p["steps"]), ", ".join(rotation.describe_targets())), **rotation.result())
        result = rotation.run(current)
    except RunbookError as exc:
        module.fail_from(exc, "rotation of %s failed" % p["name"])
    module.exit_json(**module.finished(result))


if __name__ == "__main__":
    main()
