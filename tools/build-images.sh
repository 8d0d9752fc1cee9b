#!/usr/bin/env bash
# Makes sure the container images the sandbox and the tests use exist, and writes their names to
# .build/images.env. An official image that is already present or can be pulled comes first; where no
# registry answers, the image is built locally from Debian packages (debootstrap + docker import) and
# cached by name, so the minute it takes is paid once per machine.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build

POSTGRES_OFFICIAL=${POSTGRES_OFFICIAL:-postgres:15}
PYTHON_OFFICIAL=${PYTHON_OFFICIAL:-python:3.11-slim}
LOCAL_IMAGE=${LOCAL_IMAGE:-stackops-local/postgres:15}
# Molecule's instances: PostgreSQL, python3 and the Python libraries our modules use on a managed host. No
# official image has all three, so it is always built here, on top of the local image (cached by name).
MOLECULE_IMAGE=${MOLECULE_IMAGE:-stackops-local/molecule-postgres:15}
MOLECULE_LIBRARIES=(zstandard jmespath)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

try_pull() {
    [ "${STACKOPS_NO_PULL:-}" = 1 ] && return 1
    have_image "$1" && return 0
    timeout 60 docker pull -q "$1" >/dev/null 2>&1
}

build_local_image() {
    have_image "$LOCAL_IMAGE" && return 0
    echo "building $LOCAL_IMAGE from Debian packages (about a minute)..."
    local root
    root=$(mktemp -d /var/tmp/stackops-rootfs.XXXXXX)
    trap 'rm -rf "$root"' RETURN
    debootstrap --variant=minbase \
        --include=postgresql-15,postgresql-client-15,python3,zstd,gzip,ca-certificates,procps \
        bookworm "$root" "$MIRROR" >/var/tmp/stackops-debootstrap.log 2>&1 || {
            tail -20 /var/tmp/stackops-debootstrap.log >&2; return 1; }
    # the package's postinst made a cluster we never use; the entrypoint makes its own in $PGDATA
    rm -rf "$root/var/lib/postgresql/15" "$root/etc/postgresql/15" \
        "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
    install -m 0755 tools/images/postgres/docker-entrypoint.sh "$root/usr/local/bin/docker-entrypoint.sh"
    mkdir -p "$root/docker-entrypoint-initdb.d" "$root/var/lib/postgresql/data"
    tar -C "$root" -c . | docker import \
        --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV PGDATA=/var/lib/postgresql/data' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
        --change 'CMD ["postgres"]' \
        --change 'EXPOSE 5432' \
        - "$LOCAL_IMAGE" >/dev/null
    echo "built $LOCAL_IMAGE"
}

if try_pull "$POSTGRES_OFFICIAL"; then
    postgres_image=$POSTGRES_OFFICIAL
else
    build_local_image
    postgres_image=$LOCAL_IMAGE
fi
if try_pull "$PYTHON_OFFICIAL"; then
    python_image=$PYTHON_OFFICIAL
else
    # the local PostgreSQL image carries python3 too, so the demo API runs on it
    build_local_image
    python_image=$LOCAL_IMAGE
fi

build_molecule_image() {
    have_image "$MOLECULE_IMAGE" && return 0
    build_local_image
    echo "building $MOLECULE_IMAGE..."
    local context
    context=$(mktemp -d /var/tmp/stackops-molecule.XXXXXX)
    trap 'rm -rf "$context"' RETURN
    # wheels for the image's python3 (3.11, like ours), installed where Debian's python3 looks
    "${VENV:-.venv}/bin/python" -m pip install -q --only-binary=:all: --python-version 3.11 \
        --target "$context/site" "${MOLECULE_LIBRARIES[@]}"
    printf 'FROM %s\nCOPY site/ /usr/local/lib/python3.11/dist-packages/\n' "$LOCAL_IMAGE" >"$context/Dockerfile"
    docker build -q -t "$MOLECULE_IMAGE" "$context" >/dev/null
    echo "built $MOLECULE_IMAGE"
}
build_molecule_image

# Molecule's instances for the deploy, migrate and rollback roles: the same, plus docker-compose (v1, Debian's
# package, with the python docker SDK and PyYAML); the instance drives the host's engine through its socket.
MOLECULE_DOCKER_IMAGE=${MOLECULE_DOCKER_IMAGE:-stackops-local/molecule-docker:15}
build_molecule_docker_image() {
    have_image "$MOLECULE_DOCKER_IMAGE" && return 0
    echo "building $MOLECULE_DOCKER_IMAGE..."
    printf 'FROM %s\nRUN apt-get update && apt-get install -y --no-install-recommends docker-compose && rm -rf /var/lib/apt/lists/*\n' \
        "$MOLECULE_IMAGE" | docker build -q -t "$MOLECULE_DOCKER_IMAGE" - >/dev/null
    echo "built $MOLECULE_DOCKER_IMAGE"
}
build_molecule_docker_image

# The sandbox API in the versions the deploy tests and the sandbox deploy: good releases, one that never becomes
# healthy, one that turns unhealthy a few seconds after it starts, one whose migration fails. docker's build cache
# makes this a second when nothing changed.
API_IMAGE=${API_IMAGE:-stackops-sandbox/api}
API_RELEASES=(
    "1.0.0||"
    "1.1.0||001"
    "1.2.0-never-healthy|never_healthy|001"
    "1.3.0-unhealthy-later|unhealthy_after=4|001"
    "1.4.0-bad-migration||001,002,003"
    "1.5.0||001"
)
build_api_images() {
    local context release version failure migrations
    context=$(mktemp -d /var/tmp/stackops-api.XXXXXX)
    trap 'rm -rf "$context"' RETURN
    cp -r tools/sandbox/api/. "$context/"
    # psycopg2 for the app's migrate command, for the image's python3 (3.11, like ours)
    if ! "${VENV:-.venv}/bin/python" -m pip install -q --only-binary=:all: --python-version 3.11 \
            --target "$context/site" psycopg2-binary >"$context/pip.log" 2>&1; then
        cat "$context/pip.log" >&2
        return 1
    fi
    for release in "${API_RELEASES[@]}"; do
        IFS='|' read -r version failure migrations <<<"$release"
        docker build -q -t "$API_IMAGE:$version" --build-arg "BASE=$python_image" --build-arg "VERSION=$version" \
            --build-arg "FAILURE=$failure" --build-arg "MIGRATIONS=$migrations" "$context" >/dev/null 2>"$context/build.log" \
            || { cat "$context/build.log" >&2; return 1; }
    done
    echo "built $API_IMAGE: $(printf '%s ' "${API_RELEASES[@]%%|*}")"
}
build_api_images

# A bare Debian 12 (python3 for Ansible, apt, nothing of the collection's libraries) for the prerequisites role's
# Molecule scenario, and the same with sshd for the remote-host tests: a fresh server reached over SSH.
BARE_IMAGE=${BARE_IMAGE:-stackops-local/debian:12}
SSH_HOST_IMAGE=${SSH_HOST_IMAGE:-stackops-local/ssh-host:12}
build_bare_images() {
    if ! have_image "$BARE_IMAGE"; then
        echo "building $BARE_IMAGE from Debian packages (about a minute)..."
        local root
        root=$(mktemp -d /var/tmp/stackops-rootfs.XXXXXX)
        debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$root" "$MIRROR" \
            >/var/tmp/stackops-debootstrap.log 2>&1 || { tail -20 /var/tmp/stackops-debootstrap.log >&2; rm -rf "$root"; return 1; }
        rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
        tar -C "$root" -c . | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["sleep", "infinity"]' \
            - "$BARE_IMAGE" >/dev/null
        rm -rf "$root"
        echo "built $BARE_IMAGE"
    fi
    if ! have_image "$SSH_HOST_IMAGE"; then
        echo "building $SSH_HOST_IMAGE..."
        local context
        context=$(mktemp -d /var/tmp/stackops-ssh.XXXXXX)
        cp tools/images/ssh-host/entrypoint.sh "$context/"
        printf 'FROM %s\nRUN apt-get update && apt-get install -y --no-install-recommends openssh-server && rm -rf /var/lib/apt/lists/*\nCOPY entrypoint.sh /usr/local/bin/\nEXPOSE 22\nCMD ["/usr/local/bin/entrypoint.sh"]\n' \
            "$BARE_IMAGE" >"$context/Dockerfile"
        docker build -q -t "$SSH_HOST_IMAGE" "$context" >/dev/null
        rm -rf "$context"
        echo "built $SSH_HOST_IMAGE"
    fi
}
build_bare_images

# The sandbox's cache: Debian's redis-server (7.0) on the bare image, as no registry answers here.
REDIS_IMAGE=${REDIS_IMAGE:-stackops-local/redis:7}
if ! have_image "$REDIS_IMAGE"; then
    echo "building $REDIS_IMAGE..."
    printf 'FROM %s\nRUN apt-get update && apt-get install -y --no-install-recommends redis-server && rm -rf /var/lib/apt/lists/*\nEXPOSE 6379\nCMD ["redis-server", "--protected-mode", "no"]\n' \
        "$BARE_IMAGE" | docker build -q -t "$REDIS_IMAGE" - >/dev/null
    echo "built $REDIS_IMAGE"
fi

cat > .build/images.env <<ENV
STACKOPS_POSTGRES_IMAGE=$postgres_image
STACKOPS_PYTHON_IMAGE=$python_image
STACKOPS_MOLECULE_IMAGE=$MOLECULE_IMAGE
STACKOPS_MOLECULE_DOCKER_IMAGE=$MOLECULE_DOCKER_IMAGE
SANDBOX_API_IMAGE=$API_IMAGE
STACKOPS_BARE_IMAGE=$BARE_IMAGE
STACKOPS_SSH_HOST_IMAGE=$SSH_HOST_IMAGE
STACKOPS_REDIS_IMAGE=$REDIS_IMAGE
ENV
cat .build/images.env
