#!/usr/bin/env bash
# Entrypoint of the locally built PostgreSQL image. It implements the interface of the official
# `postgres` image (POSTGRES_PASSWORD, POSTGRES_USER, POSTGRES_DB, POSTGRES_HOST_AUTH_METHOD,
# POSTGRES_INITDB_ARGS, /docker-entrypoint-initdb.d/, port 5432, `postgres` as the command) so that
# nothing in the collection has to tell the two apart.
set -Eeuo pipefail

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
auth_method="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 3777 /var/run/postgresql

    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth_method" != 'trust' ]; then
            echo >&2 'error: database is uninitialized and superuser password is not specified.'
            echo >&2 '       Set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust (not for production).'
            exit 1
        fi
        pwfile=$(mktemp)
        printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
        chown postgres "$pwfile"
        # shellcheck disable=SC2086
        as_postgres initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 \
            --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
        rm -f "$pwfile"
        {
            echo
            echo "host all all all $auth_method"
        } >> "$PGDATA/pg_hba.conf"
        echo "listen_addresses = '*'" >> "$PGDATA/postgresql.auto.conf"

        as_postgres pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -p 5432" start >/dev/null
        export PGUSER="$POSTGRES_USER" PGPASSWORD="${POSTGRES_PASSWORD:-}" PGHOST=/var/run/postgresql
        psql_init=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres)
        if [ "$POSTGRES_DB" != 'postgres' ]; then
            "${psql_init[@]}" --set db="$POSTGRES_DB" -q <<<'CREATE DATABASE :"db";'
        fi
        for f in /docker-entrypoint-initdb.d/*; do
            [ -e "$f" ] || continue
            case "$f" in
                *.sh)     echo "running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
                *.sql)    echo "running $f"; "${psql_init[@]}" --dbname "$POSTGRES_DB" -q -f "$f" ;;
                *.sql.gz) echo "running $f"; gunzip -c "$f" | "${psql_init[@]}" --dbname "$POSTGRES_DB" -q ;;
                *.sql.zst) echo "running $f"; zstd -dc "$f" | "${psql_init[@]}" --dbname "$POSTGRES_DB" -q ;;
                *)        echo "ignoring $f" ;;
            esac
        done
        as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
        unset PGPASSWORD
        echo 'PostgreSQL init process complete; ready for start up.'
    fi
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
fi

exec "$@"
