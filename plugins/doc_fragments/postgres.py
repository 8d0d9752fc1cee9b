# Copyright: (c) 2026, stackops.runbook contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Connection options shared by every module that talks to PostgreSQL. The names follow
    # community.postgresql so that module_defaults and inventories carry over.
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host of the PostgreSQL server.
      - Leave it out to connect through the default Unix socket (on the host, or inside O(container)).
    type: str
  login_port:
    description: Port of the PostgreSQL server.
    type: int
    default: 5432
  login_user:
    description: The role to connect as.
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user).
      - Handed to the client programs through a private passfile (on the host) or the exec environment (in a
        container); it never appears in a command line or a log.
    type: str
  login_unix_socket:
    description: Directory of the server's Unix socket, when not the default.
    type: str
  ssl_mode:
    description: libpq's C(sslmode) for the connection.
    type: str
    default: prefer
    choices: [allow, disable, prefer, require, verify-ca, verify-full]
  ca_cert:
    description: A file of CA certificates to check the server's certificate against (libpq's C(sslrootcert)).
    type: path
  bin_dir:
    description:
      - Directory of the PostgreSQL client programs on the host (for example the output of C(pg_config --bindir)).
      - Default is to look them up in E(PATH). Not used with O(container).
      - Where those in E(PATH) are Debian's and Ubuntu's C(pg_wrapper) and a host is given (O(login_host) or
        O(login_unix_socket)), the program it would pick (the newest installed version that has it) is started
        directly, without the wrapper.
    type: path
requirements:
  - The PostgreSQL client programs (psql, pg_dump, pg_restore) on the host, or inside O(container).
"""
