#!/usr/bin/env bash
# `make demo`: sample raw Segment logs -> events -> daily and yearly counts -> compaction plan -> typed tables ->
# erasure of one person -> SQL,
# all local: files under ./lake, Spark's embedded metastore under ./lake/tables/_metastore. Rerunning starts from scratch.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
CONFIG=conf/local.yaml
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

rm -rf lake
step "1/8 sample data: 2 sources x 3 days of raw Segment logs (lake/raw)"
lake sample --out lake/raw --sources 2 --days 3 --events-per-day 5000 --start-date 2026-01-01

step "2/8 json_to_parquet: raw JSON -> events (Parquet, sourceid/dt partitions), rejects -> quarantine"
scripts/submit.sh local json_to_parquet --config "$CONFIG" --date 2026-01-01 --end-date 2026-01-03

step "3/8 message_type_counts --period day"
scripts/submit.sh local message_type_counts --config "$CONFIG" --period day --date 2026-01-01 --end-date 2026-01-03

step "4/8 message_type_counts --period year (the 365 days ending 2026-01-03, built from the daily table)"
scripts/submit.sh local message_type_counts --config "$CONFIG" --period year --date 2026-01-03

step "5/8 compact_partitions --dry-run (what compaction would do to events)"
scripts/submit.sh local compact_partitions --config "$CONFIG" --table events --target-file-mb 1 --dry-run

step "6/8 event_tables: typed tables per call type and per track event (properties as columns)"
scripts/submit.sh local event_tables --config "$CONFIG" --date 2026-01-01 --end-date 2026-01-03

step "7/8 forget_users: erase one person (and the ids the lake ties to them) from every table"
python - <<'PY'  # the request: the first userId of web's raw logs, as Segment's deletion requests name people
import glob, gzip, json

def user_ids():
    for name in sorted(glob.glob("lake/raw/web/*/*.gz")):
        for line in gzip.open(name, "rt", errors="replace"):
            try:
                yield json.loads(line)["userId"]
            except (ValueError, KeyError, TypeError):
                continue

with open("lake/forget-request.jsonl", "w") as out:
    out.write(json.dumps({"userId": next(user_ids())}) + "\n")
PY
scripts/submit.sh local forget_users --config "$CONFIG" --ids lake/forget-request.jsonl --set forget.retention_hours=0

step "8/8 the tables, queried by name through Spark's metastore"
lake sql --config "$CONFIG" --limit 20 \
  "SHOW TABLES IN segment_logs" \
  "SELECT sourceid, end_dt, type, message_count FROM segment_logs.message_type_counts_yearly
     ORDER BY sourceid, message_count DESC" \
  "SELECT sourceid, dt, count(*) AS events, count(DISTINCT userid) AS users, min(receivedat) AS first_received
     FROM segment_logs.events GROUP BY sourceid, dt ORDER BY sourceid, dt" \
  "SELECT sourceid, dt, count(*) AS orders, round(sum(revenue), 2) AS revenue
     FROM segment_logs.order_completed GROUP BY sourceid, dt ORDER BY sourceid, dt" \
  "SELECT job, status, count(*) AS runs FROM segment_logs.lake_runs GROUP BY job, status ORDER BY job, status"

step "what is on disk"
find lake -maxdepth 5 -type d \( -name 'dt=*' -o -name 'end_dt=*' \) | sort | sed 's/^/  /'
echo "  reports: $(find lake/reports -name '*.json' | wc -l) run reports under lake/reports/ (also rows of lake_runs: lake runs)"
