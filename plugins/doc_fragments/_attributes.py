# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: the action_group attribute of the modules in the action groups of meta/runtime.yml, one constant per
# combination of groups (fragments replace an attribute, they do not merge its membership).
# Not a public API of the collection, may change without notice.

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
"""

    ACTIONGROUP_POSTGRES_DOCKER = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/stackops.runbook.postgres) in C(module_defaults) to set the connection options (login_*, ssl_mode, ca_cert, container) once.
      - Use C(group/stackops.runbook.docker) in C(module_defaults) to set O(docker_host) once.
    support: full
    membership:
      - stackops.runbook.postgres
      - stackops.runbook.docker
"""

    ACTIONGROUP_POSTGRES_DOCKER_STORAGE = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/stackops.runbook.postgres) in C(module_defaults) to set the connection options (login_*, ssl_mode, ca_cert, container) once.
      - Use C(group/stackops.runbook.docker) in C(module_defaults) to set O(docker_host) once.
      - Use C(group/stackops.runbook.storage) in C(module_defaults) to set O(s3) once.
    support: full
    membership:
      - stackops.runbook.postgres
      - stackops.runbook.docker
      - stackops.runbook.storage
"""

    ACTIONGROUP_DOCKER = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/stackops.runbook.docker) in C(module_defaults) to set O(docker_host) once.
    support: full
    membership:
      - stackops.runbook.docker
"""

    ACTIONGROUP_DOCKER_STORAGE = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/stackops.runbook.docker) in C(module_defaults) to set O(docker_host) once.
      - Use C(group/stackops.runbook.storage) in C(module_defaults) to set O(s3) once.
    support: full
    membership:
      - stackops.runbook.docker
      - stackops.runbook.storage
"""

    ACTIONGROUP_STORAGE = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/stackops.runbook.storage) in C(module_defaults) to set O(s3) once.
    support: full
    membership:
      - stackops.runbook.storage
"""
