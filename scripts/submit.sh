#!/usr/bin/env bash
# Run a lakelib job here, on an EMR cluster, or on EMR Serverless: `lake submit` from this checkout.
#
#   scripts/submit.sh local JOB [JOB_ARGS...]
#   scripts/submit.sh emr --cluster-id j-XXX --artifacts s3://bucket/prefix [--wait] [--execution-role-arn ARN]
#                     [--name NAME] [--action-on-failure CONTINUE|CANCEL_AND_WAIT|TERMINATE_CLUSTER]
#                     [--conf KEY=VALUE]... [--scheme s3|s3a] [--poll-seconds N] [--dry-run] JOB [JOB_ARGS...]
#   scripts/submit.sh serverless --application-id ID --execution-role-arn ARN --artifacts s3://bucket/prefix
#                     [--wait] [--name NAME] [--conf KEY=VALUE]... [--log-uri s3://...] [--cloudwatch-logs]
#                     [--cloudwatch-log-group NAME] [--price-vcpu-hour USD] [--price-gb-hour USD]
#                     [--price-storage-gb-hour USD] [--poll-seconds N] [--dry-run] JOB [JOB_ARGS...]
#
# Everything happens in lakelib/submit.py (the `lake submit` command of an installed package): the job's own
# parser checks its arguments and the config is checked before anything is uploaded; --dry-run (anywhere on the
# line) prints the request and sends nothing; --wait prints each state change, the driver's last lines, the run
# report's URI and, on EMR Serverless, the billed use and its cost. See docs/emr.md.
# The aws CLI's own environment applies: AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, ...
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'
    exit 0
fi

# The first of $PYTHON, python3, python on PATH, the checkout's .venv that is 3.9+ and imports PyYAML and boto3.
for candidate in "${PYTHON:-}" "$(command -v python3 || true)" "$(command -v python || true)" "$REPO/.venv/bin/python"; do
    if [[ -n "$candidate" && -x "$candidate" ]] &&
        "$candidate" -c "import sys; sys.version_info >= (3, 9) or sys.exit(1); import yaml, boto3" 2>/dev/null; then
        PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" LAKELIB_SUBMIT_PROG="scripts/submit.sh" \
            exec "$candidate" -m lakelib.submit "$@"
    fi
done
printf 'submit: error: %s\n' "no Python 3.9+ with PyYAML and boto3 found (run 'make install')" >&2
exit 1
