# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: the action_group attribute of the modules in the action groups of meta/runtime.yml, one constant per
# combination of groups (fragments replace an attribute, they do not merge its membership).
# Not a public API of the collection, may change without notice.

from __future__ import annotations

_GROUPS = {
    "postgres": "the connection options (login_*, ssl_mode, ca_cert, container)",
    "docker": "O(docker_host)",
    "storage": "O(s3)",
}


def _action_group(*groups):
    return """
options: {}
attributes:
  action_group:
    description:
%s
    support: full
    membership:
%s
""" % ("\n".join("      - Use C(group/stackops.runbook.%s) in C(module_defaults) to set %s once." % (g, _GROUPS[g])
                 for g in groups),
       "\n".join("      - stackops.runbook.%s" % g for g in groups))


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
"""

    ACTIONGROUP_POSTGRES_DOCKER = _action_group("postgres", "docker")
    ACTIONGROUP_POSTGRES_DOCKER_STORAGE = _action_group("postgres", "docker", "storage")
    ACTIONGROUP_DOCKER = _action_group("docker")
    ACTIONGROUP_DOCKER_STORAGE = _action_group("docker", "storage")
    ACTIONGROUP_STORAGE = _action_group("storage")
