#!/usr/bin/env bash
# The embedded sandbox: `up` starts the compose stack (postgres with sample data, the demo API) and an
# S3 API server (moto) on loopback with a bucket; `down` removes all of it; `report` shows where the
# backups landed; `status` says what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.build/sandbox
VENV=${VENV:-$ROOT/.venv}
PROJECT=stackops-sandbox
S3_PORT=${SANDBOX_S3_PORT:-59000}
S3_BUCKET=${SANDBOX_S3_BUCKET:-stackops-backups}
export AWS_ACCESS_KEY_ID=${SANDBOX_S3_ACCESS_KEY:-sandbox-access-key}
export AWS_SECRET_ACCESS_KEY=${SANDBOX_S3_SECRET_KEY:-sandbox-secret-key}
export AWS_DEFAULT_REGION=us-east-1
mkdir -p "$STATE" "$STATE/metrics"

compose() {
    set -a
    # shellcheck disable=SC1091
    . "$ROOT/.build/images.env"
    set +a
    "$ROOT/tools/compose.sh" -p "$PROJECT" -f "$ROOT/tools/sandbox/docker-compose.yml" "$@"
}

s3_up() {
    if [ -f "$STATE/moto.pid" ] && kill -0 "$(cat "$STATE/moto.pid")" 2>/dev/null; then
        return 0
    fi
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$STATE/moto.log" 2>&1 &
    echo $! >"$STATE/moto.pid"
    for _ in $(seq 1 50); do
        "$VENV/bin/python" - "$S3_PORT" "$S3_BUCKET" <<'PY' 2>/dev/null && return 0
import sys, boto3
client = boto3.client("s3", endpoint_url="http://127.0.0.1:%s" % sys.argv[1])
names = [b["Name"] for b in client.list_buckets()["Buckets"]]
if sys.argv[2] not in names:
    client.create_bucket(Bucket=sys.argv[2])
PY
        sleep 0.2
    done
    echo "the S3 API server (moto) did not start; see $STATE/moto.log" >&2
    return 1
}

s3_down() {
    if [ -f "$STATE/moto.pid" ]; then
        kill "$(cat "$STATE/moto.pid")" 2>/dev/null || true
        rm -f "$STATE/moto.pid"
    fi
}

# a running container of a service (deploys renumber them: api_1, api_2...)
service_container() {
    docker ps -q --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=$1" | head -1
}

wait_healthy() {
    local name id
    for name in postgres redis api proxy; do
        id=$(service_container "$name")
        for _ in $(seq 1 90); do
            [ "$(docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null)" = healthy ] && break
            sleep 1
        done
        if [ "$(docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null)" != healthy ]; then
            echo "the sandbox's $name container did not become healthy:" >&2
            [ -n "$id" ] && docker logs --tail 30 "$id" >&2
            return 1
        fi
    done
    # a new cluster's init phase answers on the socket only and then restarts: TCP answers once it is done
    id=$(service_container postgres)
    for _ in $(seq 1 90); do
        docker exec "$id" pg_isready -q -h 127.0.0.1 -U postgres && return 0
        sleep 1
    done
    echo "the sandbox's postgres did not accept TCP connections" >&2
    return 1
}

case "${1:-}" in
    up)
        compose up -d
        s3_up
        wait_healthy
        # a few user uploads in the uploads volume, the first time (expanded by the container's shell)
        # shellcheck disable=SC2016
        docker exec "$(service_container api)" sh -c '[ -e /srv/uploads/avatars ] || { mkdir -p /srv/uploads/avatars /srv/uploads/invoices &&
            for i in $(seq 1 40); do head -c 20000 /dev/urandom > /srv/uploads/avatars/user$i.png; done &&
            for i in $(seq 1 12); do echo "invoice $i" > /srv/uploads/invoices/2026-$i.txt; done; }'
        echo "sandbox is up: postgres on 127.0.0.1:${SANDBOX_POSTGRES_PORT:-55432}, API on http://127.0.0.1:${SANDBOX_API_PORT:-58080}, S3 on http://127.0.0.1:$S3_PORT (bucket $S3_BUCKET)"
        ;;
    down)
        compose down -v --remove-orphans || true
        # the version compose_release deployed (tools/sandbox/.env) and a maintenance page go with the sandbox
        rm -rf "$ROOT/tools/sandbox/.env" "$ROOT/tools/sandbox/maintenance" "$STATE/releases.jsonl" "$STATE/releases.jsonl.lock" "$STATE/secrets" "$STATE/incidents"
        s3_down
        rm -rf "$STATE/pre-migration" "$STATE/backups" "$STATE/volume-backups" "$STATE/drills" "$STATE/metrics" "$STATE/ledger.jsonl"
        echo "sandbox removed"
        ;;
    status)
        compose ps
        if [ -f "$STATE/moto.pid" ] && kill -0 "$(cat "$STATE/moto.pid")" 2>/dev/null; then
            echo "S3 API (moto): running on 127.0.0.1:$S3_PORT"
        else
            echo "S3 API (moto): not running"
        fi
        ;;
    report)
        echo
        echo "Local backups in $STATE/backups and $STATE/volume-backups:"
        find "$STATE/backups" "$STATE/volume-backups" -mindepth 1 -maxdepth 1 ! -name '.*' -printf '  %p  %s bytes\n' \
            2>/dev/null | sort || echo "  (none)"
        echo
        echo "Offsite copies in s3://$S3_BUCKET (S3 API on 127.0.0.1:$S3_PORT):"
        "$VENV/bin/python" - "$S3_PORT" "$S3_BUCKET" <<'PY'
import sys, boto3
client = boto3.client("s3", endpoint_url="http://127.0.0.1:%s" % sys.argv[1])
for obj in client.list_objects_v2(Bucket=sys.argv[2]).get("Contents", []):
    print("  s3://%s/%-60s %10d bytes" % (sys.argv[2], obj["Key"], obj["Size"]))
PY
        echo
        latest=$(find "$STATE/drills" -name 'drill_*.json' -printf '%T@ %p\n' 2>/dev/null | sort -n | tail -1 | cut -d' ' -f2-)
        if [ -n "$latest" ]; then
            "$VENV/bin/python" - "$latest" <<'PY'
import json, sys
drill = json.load(open(sys.argv[1]))
verdict = "PASSED" if drill["passed"] else "FAILED: " + "; ".join(f["message"] for f in drill["failures"])
print("Restore drill of %s: %s (restored in %ss, RTO %ss)" % (drill.get("backup"), verdict, drill.get("restore_seconds"),
                                                             drill.get("rto_seconds")))
print("  drill log: %s" % sys.argv[1][:-len(".json")] + ".md")
PY
        fi
        echo "Audit ledger: $STATE/ledger.jsonl ($(wc -l <"$STATE/ledger.jsonl" 2>/dev/null || echo 0) operations)"
        echo "node_exporter metrics: $STATE/metrics/"
        ;;
    *)
        echo "usage: $0 up|down|status|report" >&2
        exit 2
        ;;
esac
