#!/usr/bin/env bash
# Run a lakelib job here or on an EMR cluster.
#
#   scripts/submit.sh local JOB [JOB_ARGS...]
#   scripts/submit.sh emr --cluster-id j-XXX --artifacts s3://bucket/prefix [--wait] [--name NAME]
#                     [--action-on-failure CONTINUE|CANCEL_AND_WAIT|TERMINATE_CLUSTER] [--conf KEY=VALUE]...
#                     [--scheme s3|s3a] [--poll-seconds N] [--dry-run] JOB [JOB_ARGS...]
#
# local: spark-submit jobs/JOB.py JOB_ARGS on this machine (lakelib importable, Spark's startup chatter quiet);
#        the exit status is the job's.
# emr:   packages lakelib (a wheel for the bootstrap action, a zip for --py-files), uploads the zip, the wheel,
#        jobs/JOB.py and the --config file under --artifacts (in folders named after their content, so a rerun
#        never changes files a running step reads), adds ONE cluster-mode Spark step with `aws emr add-steps`
#        whose --config points at the uploaded copy, and prints the step id. --wait polls the step and exits 1
#        if it did not complete, saying where its logs are. --dry-run prints the step JSON and sends nothing.
#        --scheme: how Spark reads the artifacts; by default s3 on EMR 7 (EMRFS), s3a from EMR 8 on (read from
#        the cluster's release label).
# The aws CLI's own environment applies: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK=""

usage() {
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

die() {  # die MESSAGE [STATUS]
    printf 'submit: error: %s\n' "$1" >&2
    exit "${2:-1}"
}

cleanup() {
    if [[ -n "$WORK" ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# find_python MODULE...: the first of $PYTHON, python3, python on PATH, the repo's .venv that imports MODULEs.
find_python() {
    local candidate imports
    imports="import sys; sys.version_info >= (3, 9) or sys.exit(1)"
    for module in "$@"; do imports="$imports; import $module"; done
    for candidate in "${PYTHON:-}" "$(command -v python3 || true)" "$(command -v python || true)" \
        "$REPO/.venv/bin/python"; do
        if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" -c "$imports" 2>/dev/null; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

run_local() {
    [[ $# -ge 1 ]] || usage
    local job="$1" script spark_submit python
    shift
    script="$REPO/jobs/$job.py"
    [[ "$job" =~ ^[A-Za-z_][A-Za-z0-9_]*$ && -f "$script" ]] || die "unknown job '$job' (see $REPO/jobs/)" 2
    spark_submit="$(command -v spark-submit || true)"
    if [[ -z "$spark_submit" && -x "$REPO/.venv/bin/spark-submit" ]]; then spark_submit="$REPO/.venv/bin/spark-submit"; fi
    [[ -n "$spark_submit" ]] || die "spark-submit is not on PATH (run 'make install' and use .venv/bin)"
    python="$(find_python pyspark yaml)" || die "no Python 3.9+ with pyspark and PyYAML found (run 'make install')"
    export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$python}"
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
    exec "$spark_submit" \
        --driver-java-options "-Dlog4j2.configurationFile=file:$REPO/lakelib/resources/log4j2.properties" \
        "$script" "$@"
}

# aws_call ARGS...: the aws CLI, its stderr kept in $WORK/aws.err for last_error.
aws_call() {
    aws "$@" 2>"$WORK/aws.err"
}

last_error() {
    grep -v '^[[:space:]]*$' "$WORK/aws.err" | tail -n 1 |
        sed -E 's/^An error occurred \(([A-Za-z0-9]+)\) when calling the [A-Za-z]+ operation: //'
}

run_emr() {
    local cluster="" artifacts="" wait=0 dry_run=0 scheme="" poll="${LAKELIB_POLL_SECONDS:-30}"
    local -a plan_opts=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --cluster-id) cluster="${2:?--cluster-id needs a value}"; shift 2 ;;
            --artifacts) artifacts="${2:?--artifacts needs a value}"; shift 2 ;;
            --scheme) scheme="${2:?--scheme needs s3 or s3a}"; shift 2 ;;
            --poll-seconds) poll="${2:?--poll-seconds needs a number}"; shift 2 ;;
            --name | --action-on-failure | --conf) plan_opts+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
            --wait) wait=1; shift ;;
            --dry-run) dry_run=1; shift ;;
            -h | --help) usage ;;
            --) shift; break ;;
            -*) die "unknown option $1 (before the job name; see scripts/submit.sh --help)" 2 ;;
            *) break ;;
        esac
    done
    [[ $# -ge 1 ]] || die "no job given (scripts/submit.sh emr --cluster-id J --artifacts s3://B/P JOB ...)" 2
    [[ -n "$cluster" ]] || die "--cluster-id is required" 2
    [[ "$artifacts" =~ ^s3://[a-z0-9][a-z0-9.-]+[a-z0-9](/.*)?$ ]] || die "--artifacts must be s3://bucket[/prefix]" 2
    [[ "$poll" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--poll-seconds must be a number" 2
    local bucket="${artifacts#s3://}"
    bucket="${bucket%%/*}"

    local python
    python="$(find_python yaml)" || die "no Python 3.9+ with PyYAML found (run 'make install')"
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/lakelib-submit.XXXXXX")"

    local log_uri=""
    if [[ $dry_run -eq 0 ]]; then
        command -v aws >/dev/null || die "the aws CLI is not on PATH (pip install awscli, or install AWS CLI v2)"
        local described state release
        described="$(aws_call emr describe-cluster --cluster-id "$cluster" \
            --query '[Cluster.Status.State, Cluster.ReleaseLabel, Cluster.LogUri]' --output text)" ||
            die "cluster $cluster: $(last_error)"
        read -r state release log_uri <<<"$described"
        case "$state" in
            TERMINATING | TERMINATED | TERMINATED_WITH_ERRORS) die "cluster $cluster is $state" ;;
        esac
        [[ -n "$scheme" ]] || scheme="$(PYTHONPATH="$REPO" "$python" -m lakelib.emr scheme "$release")"
        aws_call s3api head-bucket --bucket "$bucket" >/dev/null ||
            die "bucket $bucket: $(last_error) (does it exist, and may this identity use it?)"
    fi

    [[ $dry_run -eq 0 ]] || plan_opts+=(--dry-run)
    local wheel_uri
    wheel_uri="$(PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$python" -m lakelib.emr plan --repo "$REPO" \
        --workdir "$WORK" --artifacts "$artifacts" --scheme "${scheme:-s3}" \
        ${plan_opts[@]+"${plan_opts[@]}"} "$@")" || exit $?

    if [[ $dry_run -eq 1 ]]; then
        cat "$WORK/step.json"
        cut -f2 "$WORK/uploads.tsv" | sed 's/^/submit: would upload /' >&2
        return 0
    fi

    # Stage every file at its key and upload them with one `aws s3 cp --recursive`.
    local src dst
    while IFS=$'\t' read -r src dst; do
        mkdir -p "$(dirname "$WORK/stage/${dst#s3://}")"
        cp "$src" "$WORK/stage/${dst#s3://}"
    done <"$WORK/uploads.tsv"
    aws_call s3 cp --recursive --only-show-errors "$WORK/stage/$bucket" "s3://$bucket/" >/dev/null ||
        die "upload to s3://$bucket failed: $(last_error)"
    cut -f2 "$WORK/uploads.tsv" | sed 's/^/submit: uploaded /' >&2
    printf 'submit: wheel for the bootstrap action: %s\n' "$wheel_uri" >&2

    local step_id
    step_id="$(aws_call emr add-steps --cluster-id "$cluster" --steps "file://$WORK/step.json" \
        --query 'StepIds[0]' --output text)" || die "cluster $cluster: cannot add the step: $(last_error)"
    printf '%s\n' "$step_id"

    [[ $wait -eq 1 ]] || return 0
    local status reason
    while true; do
        status="$(aws_call emr describe-step --cluster-id "$cluster" --step-id "$step_id" \
            --query 'Step.Status.State' --output text)" || die "step $step_id: $(last_error)"
        case "$status" in
            COMPLETED)
                printf 'submit: step %s COMPLETED\n' "$step_id" >&2
                return 0 ;;
            FAILED | CANCELLED | INTERRUPTED)
                reason="$(aws_call emr describe-step --cluster-id "$cluster" --step-id "$step_id" \
                    --query 'Step.Status.FailureDetails.Message' --output text || true)"
                [[ "$reason" != "None" ]] || reason=""
                if [[ -n "$log_uri" && "$log_uri" != "None" ]]; then
                    log_uri="${log_uri/#s3n:\/\//s3://}"
                    die "step $step_id $status${reason:+: $reason}; logs: ${log_uri%/}/$cluster/steps/$step_id/"
                fi
                die "step $step_id $status${reason:+: $reason}; the cluster has no LogUri (see the EMR console)" ;;
        esac
        printf 'submit: step %s %s\n' "$step_id" "$status" >&2
        sleep "$poll"
    done
}

[[ $# -ge 1 ]] || usage
mode="$1"
shift
case "$mode" in
    local) run_local "$@" ;;
    emr) run_emr "$@" ;;
    -h | --help) usage ;;
    *) die "unknown mode '$mode' (local or emr)" 2 ;;
esac
