#!/usr/bin/env bash
# Run a lakelib job here, on an EMR cluster, or on EMR Serverless.
#
#   scripts/submit.sh local JOB [JOB_ARGS...]
#   scripts/submit.sh emr --cluster-id j-XXX --artifacts s3://bucket/prefix [--wait] [--execution-role-arn ARN]
#                     [--name NAME] [--action-on-failure CONTINUE|CANCEL_AND_WAIT|TERMINATE_CLUSTER]
#                     [--conf KEY=VALUE]... [--scheme s3|s3a] [--poll-seconds N] [--dry-run] JOB [JOB_ARGS...]
#   scripts/submit.sh serverless --application-id ID --execution-role-arn ARN --artifacts s3://bucket/prefix
#                     [--wait] [--name NAME] [--conf KEY=VALUE]... [--log-uri s3://...] [--poll-seconds N]
#                     [--dry-run] JOB [JOB_ARGS...]
#
# local:      spark-submit jobs/JOB.py JOB_ARGS on this machine (lakelib importable, Spark's startup chatter
#             quiet); the exit status is the job's.
# emr:        builds the wheel (python -m build) and the --py-files zip (the wheel plus PyYAML), uploads them,
#             jobs/JOB.py and the --config file under --artifacts (in folders named after their content, so a
#             rerun never changes files a running step reads), adds ONE cluster-mode Spark step with
#             `aws emr add-steps` (a runtime role with --execution-role-arn) and prints the step id. --wait waits
#             with EMR's step-complete waiter and exits 1 unless the step completed, printing its failure details
#             and log location. --scheme: how Spark reads the artifacts; by default from the release label (s3 on
#             EMR 7, s3a from EMR 8 on).
# serverless: uploads the same, starts ONE job run with `aws emr-serverless start-job-run` (entryPoint = the job
#             script, entryPointArguments = the job arguments, --py-files and --conf in sparkSubmitParameters,
#             logs under <artifacts>/logs/ or --log-uri) and prints the job run id. --wait waits for a final
#             state and exits 1 unless it is SUCCESS, printing the state details and where the driver's stderr is.
# --dry-run prints the request (secret-looking --set/--conf values redacted) and sends nothing.
# The aws CLI's own environment applies: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK=""

usage() {  # usage [STATUS]: the header above; on stdout for --help (0), on stderr otherwise
    local text
    text="$(sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//')"
    if [[ "${1:-2}" -eq 0 ]]; then printf '%s\n' "$text"; else printf '%s\n' "$text" >&2; fi
    exit "${1:-2}"
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

lakelib_emr() {  # lakelib_emr PYTHON ARGS...: python -m lakelib.emr from this checkout
    local python="$1"
    shift
    PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$python" -m lakelib.emr "$@"
}

run_local() {
    [[ $# -ge 1 ]] || usage
    local job="$1" script spark_submit python
    shift
    spark_submit="$(command -v spark-submit || true)"
    if [[ -z "$spark_submit" && -x "$REPO/.venv/bin/spark-submit" ]]; then spark_submit="$REPO/.venv/bin/spark-submit"; fi
    [[ -n "$spark_submit" ]] || die "spark-submit is not on PATH (run 'make install' and use .venv/bin)"
    python="$(find_python pyspark yaml)" || die "no Python 3.9+ with pyspark and PyYAML found (run 'make install')"
    script="$(lakelib_emr "$python" job-script "$REPO" "$job")" || exit $?
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

# run_remote emr|serverless OPTIONS... JOB [JOB_ARGS...]
run_remote() {
    local target="$1"
    shift
    local cluster="" application="" role="" artifacts="" wait=0 dry_run=0 scheme="" poll="${LAKELIB_POLL_SECONDS:-30}"
    local state="" release=""
    local -a plan_opts=()
    while [[ $# -gt 0 ]]; do
        case "$target:$1" in
            emr:--cluster-id) cluster="${2:?--cluster-id needs a value}"; shift 2 ;;
            serverless:--application-id) application="${2:?--application-id needs a value}"; shift 2 ;;
            *:--execution-role-arn) role="${2:?--execution-role-arn needs a value}"; shift 2 ;;
            *:--artifacts) artifacts="${2:?--artifacts needs a value}"; shift 2 ;;
            emr:--scheme) scheme="${2:?--scheme needs s3 or s3a}"; shift 2 ;;
            *:--poll-seconds) poll="${2:?--poll-seconds needs a number}"; shift 2 ;;
            *:--name | *:--conf | emr:--action-on-failure | serverless:--log-uri)
                plan_opts+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
            *:--wait) wait=1; shift ;;
            *:--dry-run) dry_run=1; shift ;;
            *:-h | *:--help) usage 0 ;;
            *:--) shift; break ;;
            *:-*) die "unknown option $1 for $target (before the job name; see scripts/submit.sh --help)" 2 ;;
            *) break ;;
        esac
    done
    [[ $# -ge 1 ]] || die "no job given (scripts/submit.sh --help)" 2
    if [[ "$target" == emr ]]; then
        [[ -n "$cluster" ]] || die "--cluster-id is required" 2
    else
        [[ -n "$application" ]] || die "--application-id is required" 2
        [[ -n "$role" ]] || die "--execution-role-arn is required" 2
    fi
    [[ -n "$artifacts" ]] || die "--artifacts is required (s3://bucket/prefix)" 2
    [[ "$poll" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--poll-seconds must be a number" 2

    local python bucket
    local -a modules=(yaml build)
    if [[ $wait -eq 1 ]]; then modules+=(boto3); fi
    python="$(find_python "${modules[@]}")" ||
        die "no Python 3.9+ with ${modules[*]} found (run 'make install', or pip install PyYAML build boto3)"
    bucket="$(lakelib_emr "$python" bucket "$artifacts")" || exit 2
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/lakelib-submit.XXXXXX")"

    if [[ $dry_run -eq 1 ]]; then
        plan_opts+=(--dry-run)
    else
        command -v aws >/dev/null || die "the aws CLI is not on PATH (pip install awscli, or install AWS CLI v2)"
        if [[ "$target" == emr ]]; then
            local described
            described="$(aws_call emr describe-cluster --cluster-id "$cluster" \
                --query '[Cluster.Status.State, Cluster.ReleaseLabel]' --output text)" ||
                die "cluster $cluster: $(last_error)"
            read -r state release <<<"$described"
            case "$state" in
                TERMINATING | TERMINATED | TERMINATED_WITH_ERRORS) die "cluster $cluster is $state" ;;
            esac
            [[ -n "$scheme" ]] || scheme="$(lakelib_emr "$python" scheme "$release")"
        else
            state="$(aws_call emr-serverless get-application --application-id "$application" \
                --query 'application.state' --output text)" || die "application $application: $(last_error)"
            [[ "$state" != TERMINATED ]] || die "application $application is TERMINATED"
        fi
        aws_call s3api head-bucket --bucket "$bucket" >/dev/null ||
            die "bucket $bucket: $(last_error) (does it exist, and may this identity use it?)"
    fi
    if [[ "$target" == serverless ]]; then plan_opts+=(--application-id "$application" --execution-role-arn "$role"); fi

    local planned
    planned="$(lakelib_emr "$python" plan --target "$target" --repo "$REPO" --workdir "$WORK" \
        --artifacts "$artifacts" --scheme "${scheme:-s3}" ${plan_opts[@]+"${plan_opts[@]}"} "$@")" || exit $?
    if [[ $dry_run -eq 1 ]]; then
        printf '%s\n' "$planned"
        cut -f2 "$WORK/uploads.tsv" | sed 's/^/submit: would upload /' >&2
        return 0
    fi

    aws_call s3 cp --recursive --only-show-errors "$WORK/stage/$bucket" "s3://$bucket/" >/dev/null ||
        die "upload to s3://$bucket failed: $(last_error)"
    cut -f2 "$WORK/uploads.tsv" | sed 's/^/submit: uploaded /' >&2
    printf 'submit: wheel for the bootstrap action: %s\n' "$planned" >&2

    local run_id
    if [[ "$target" == emr ]]; then
        local -a role_opt=()
        if [[ -n "$role" ]]; then role_opt=(--execution-role-arn "$role"); fi
        run_id="$(aws_call emr add-steps --cluster-id "$cluster" --steps "file://$WORK/step.json" \
            ${role_opt[@]+"${role_opt[@]}"} --query 'StepIds[0]' --output text)" ||
            die "cluster $cluster: cannot add the step: $(last_error)"
    else
        run_id="$(aws_call emr-serverless start-job-run --cli-input-json "file://$WORK/request.json" \
            --query jobRunId --output text)" || die "application $application: cannot start the job run: $(last_error)"
    fi
    printf '%s\n' "$run_id"

    [[ $wait -eq 1 ]] || return 0
    if [[ "$target" == emr ]]; then
        lakelib_emr "$python" wait-step --cluster-id "$cluster" --step-id "$run_id" --poll-seconds "$poll"
    else
        lakelib_emr "$python" wait-job-run --application-id "$application" --job-run-id "$run_id" --poll-seconds "$poll"
    fi
}

[[ $# -ge 1 ]] || usage
mode="$1"
shift
case "$mode" in
    local) run_local "$@" ;;
    emr | serverless) run_remote "$mode" "$@" ;;
    -h | --help) usage 0 ;;
    *) die "unknown mode '$mode' (local, emr or serverless; see scripts/submit.sh --help)" 2 ;;
esac
