#!/bin/sh
# A managed host for the remote-host tests: sshd with key authentication for root on 127.0.0.1:$SSH_PORT (the
# container shares the host's network, so the hosts reach the services the tests run on loopback). The test
# mounts its public key at /run/stackops/authorized_keys. Nothing of the collection's libraries is installed:
# the prerequisites role does that, as it would on a user's fresh server.
set -eu
mkdir -p /root/.ssh /run/sshd
chmod 700 /root/.ssh
cp /run/stackops/authorized_keys /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
ssh-keygen -A >/dev/null
exec /usr/sbin/sshd -D -e -p "${SSH_PORT:-22}" -o ListenAddress=127.0.0.1 -o PasswordAuthentication=no \
    -o PermitRootLogin=prohibit-password
