#!/usr/bin/env bash
# make test (and CI): sanity, unit, lint, the Molecule scenarios and the integration suite, in two lanes so both
# cores work - most of the time goes to waiting on containers, servers and SSH. One lane takes the integration
# suite's groups of files from a queue, longest first; the other runs sanity, unit, lint and Molecule, then takes
# groups from the same queue. Each group is its own pytest with its own temporary directory, and the tests look
# only at what they made (their containers, processes and drills by owner), so the lanes share no state.
# Each step's output is printed whole when it ends (Molecule's: the end, unless it failed); the times at the end.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=${PY:-.venv/bin/python}
export PATH=$PWD/.venv/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$PWD/.build/collections
LOGS=.build/test-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
QUEUE=$LOGS/queue
: >"$LOGS/times"

# The integration files in groups, the longest first (CI's times); a file not named here runs in a last group.
GROUPS_LONGEST_FIRST=(
    "test_remote_hosts.py"
    "test_disaster_recovery.py test_stack_drill.py"
    "test_deploy_roles.py test_compose_release.py"
    "test_faults_deploy.py test_compose_services.py test_migration_guard.py"
    "test_pg_restore.py test_restore_drill.py test_framed_restore.py"
    "test_roles.py test_playbooks.py"
    "test_encryption.py test_config_backup.py test_image_backup.py test_volumes.py"
    "test_runbook_correctness.py test_time_parameters.py test_backup_playbook.py test_anomaly_guard.py"
    "test_pg_backup_faults.py test_pg_backup_inputs.py test_pg_backup_formats.py test_pg_backup_s3.py test_backup_info.py"
    "test_faults_data.py test_faults_hangs.py test_docker_prune.py"
    "test_health_probe.py test_health_thresholds.py test_incident.py test_security_incident.py"
    "test_observability.py"
)
named=" ${GROUPS_LONGEST_FIRST[*]} "
rest=""
for path in tests/integration/test_*.py; do
    file=${path#tests/integration/}
    [[ $named == *" $file "* ]] || rest="$rest $file"
done
{ printf '%s\n' "${GROUPS_LONGEST_FIRST[@]}"; [ -n "$rest" ] && echo "${rest# }"; } >"$QUEUE"
total_groups=$(wc -l <"$QUEUE")

# "NUMBER FILES..." of the next group of the queue, or nothing when it is empty
next_group() {
    (
        flock 9
        local group
        group=$(head -n 1 "$QUEUE")
        [ -z "$group" ] && exit 0
        sed -i '1d' "$QUEUE"
        echo "$((total_groups - $(wc -l <"$QUEUE"))) $group"
    ) 9>"$QUEUE.lock"
}

# print a finished step's log (whole, or its end) and its time, one step at a time
report() {
    local name=$1 rc=$2 seconds=$3 log=$4 tail_lines=${5:-}
    (
        flock 9
        echo "=================== $name: $([ "$rc" = 0 ] && echo passed || echo "FAILED (rc $rc)") in ${seconds}s"
        if [ -n "$tail_lines" ] && [ "$rc" = 0 ]; then
            tail -n "$tail_lines" "$log"
        else
            cat "$log"
        fi
        echo "$name ${seconds}s $([ "$rc" = 0 ] && echo passed || echo FAILED)" >>"$LOGS/times"
    ) 9>"$LOGS/report.lock"
}

step() {
    local name=$1 tail_lines=$2 start rc
    shift 2
    start=$(date +%s)
    "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    report "$name" "$rc" "$(($(date +%s) - start))" "$LOGS/$name.log" "$tail_lines"
    return "$rc"
}

integration_lane() {
    local lane=$1 failed=0 group number
    while group=$(next_group) && [ -n "$group" ]; do
        number=${group%% *}
        group=${group#* }
        # shellcheck disable=SC2086,SC2046 # the group is a list of files
        step "integration-$number" "" "$PY" -m pytest -p no:cacheprovider --basetemp="$LOGS/tmp-$number" \
            $(printf 'tests/integration/%s ' $group) || failed=1
        echo "integration-$number ($group) ran in lane $lane" >>"$LOGS/lanes"
    done
    return "$failed"
}

checks_lane() {
    local failed=0
    step sanity "" tools/sanity.sh || failed=1
    step unit "" "$PY" -m pytest -p no:cacheprovider tests/unit || failed=1
    step lint "" ansible-lint --profile production || failed=1
    step prometheus "" make --no-print-directory prometheus || failed=1
    step molecule 60 make --no-print-directory molecule || failed=1
    integration_lane checks || failed=1
    return "$failed"
}

start=$(date +%s)
integration_lane integration &
first=$!
checks_lane &
second=$!
rc=0
wait "$first" || rc=1
wait "$second" || rc=1
echo "=================== times"
cat "$LOGS/times" "$LOGS/lanes"
echo "make test: $([ "$rc" = 0 ] && echo passed || echo FAILED) in $(($(date +%s) - start))s (two lanes)"
exit "$rc"
