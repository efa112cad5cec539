"""lake backfill: the plan, the estimate, the batches in order, the stop at a failure and the command that resumes."""
from __future__ import annotations

import gzip
import json
import os
import shlex
from datetime import date
from pathlib import Path

import pytest

from lakelib import backfill, backfill_command, cli
from lakelib.backfill import Batch, plan_batches
from lakelib.paths import day_folder
from lakelib.runs import JobPace, job_paces

D = date.fromisoformat


def write_day(raw: Path, source: str, day: date, lines: list[str], name: str = "part-0.gz") -> Path:
    folder = raw / source / day_folder(day)
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / name, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return folder / name


def events(day: date, n: int, tag: str) -> list[str]:
    return [json.dumps({"messageId": f"{tag}-{day}-{i}", "type": "track", "event": "Signed Up",
                        "timestamp": f"{day}T01:00:00Z", "receivedAt": f"{day}T01:00:0{i % 10}Z"}) for i in range(n)]


def write_config(root: Path) -> Path:
    config = root / "job.yaml"
    config.write_text(f"lake:\n  raw: {root}/raw\n  tables: {root}/tables\n  quarantine: {root}/quarantine\n"
                      f"  reports: {root}/reports\ncatalog:\n  kind: none\n")
    return config


# --------------------------------------------------------------------------------------------------- planning


def test_batches_are_calendar_chunks_from_the_start_without_the_empty_ones():
    raw = {D("2026-01-01"): (2, 100), D("2026-01-02"): (1, 50), D("2026-01-09"): (2, 7)}
    got = plan_batches(D("2026-01-01"), D("2026-01-10"), 3, raw)
    assert got == [Batch(D("2026-01-01"), D("2026-01-03"), 2, 3, 150), Batch(D("2026-01-07"), D("2026-01-09"), 1, 2, 7)]
    # resumed at a batch's first day, the chunks after it are the same
    assert plan_batches(D("2026-01-07"), D("2026-01-10"), 3, raw) == got[1:]
    assert plan_batches(D("2026-01-10"), D("2026-01-10"), 1, raw) == []


@pytest.mark.parametrize("start, end, days, needle", [("2026-01-02", "2026-01-01", 1, "before --start"),
                                                      ("2026-01-01", "2026-01-02", 0, "--batch-days 0")])
def test_a_bad_range_or_batch_size_is_a_usage_error(start, end, days, needle):
    with pytest.raises(backfill.UsageError, match=needle):
        plan_batches(D(start), D(end), days, {})


def test_each_batch_is_one_changed_conversion_of_its_days():
    batch = Batch(D("2026-01-04"), D("2026-01-06"), 3, 3, 1)
    assert backfill.job_args(batch, "c.yaml", ["ios"], ["write.target_file_mb=64"]) == [
        "--config", "c.yaml", "--date", "2026-01-04", "--end-date", "2026-01-06", "--changed", "--source", "ios",
        "--set", "write.target_file_mb=64"]


def test_the_estimate_uses_the_pace_of_the_runs_where_the_backfill_runs():
    rows = [
        {"job": "json_to_parquet", "status": "succeeded", "duration_s": 30.0, "totals": '{"input_bytes": 1e9}'},
        {"job": "json_to_parquet", "status": "succeeded", "duration_s": 50.0, "totals": '{"input_bytes": 3e9}'},
        {"job": "json_to_parquet", "status": "succeeded", "duration_s": 40.0, "totals": '{"input_bytes": 1e9}',
         "emr_cluster_id": "j-1"},
        {"job": "json_to_parquet", "status": "succeeded", "duration_s": 9.0, "totals": '{"input_bytes": 0}'},
        {"job": "json_to_parquet", "status": "succeeded", "duration_s": 9.0, "totals": '{"lines_read": 3}'},
        {"job": "json_to_parquet", "status": "failed", "duration_s": 900.0, "totals": '{"input_bytes": 1e9}'},
    ]
    assert job_paces(rows)[("json_to_parquet", "local")] == JobPace(per_run=20.0, per_gb=10.0, runs=2)
    local, on_emr, serverless = (backfill.pace_of(rows, where) for where in ("local", "emr", "serverless"))
    assert (on_emr.per_run, on_emr.per_gb, on_emr.runs) == (0.0, 40.0, 1)
    assert serverless.runs == 0 and serverless.per_gb == backfill.DEFAULT_SECONDS_PER_GB
    text = backfill.format_plan([Batch(D("2026-01-01"), D("2026-01-07"), 7, 14, 3_000_000_000),
                                 Batch(D("2026-01-08"), D("2026-01-08"), 1, 2, 600_000_000)], local,
                                D("2026-01-01"), D("2026-01-08"))
    lines = text.splitlines()
    assert lines[0] == ("backfill 2026-01-01..2026-01-08: 2 batch(es), 8 day(s) with raw data (16 day folder(s)), "
                        "3,600.0 MB of raw input")
    assert lines[1].startswith("expected time: 1 min 16 s (20 s per run + 10 s per GB, from the last 2 "
                               "json_to_parquet run(s) on local)")
    assert "batch 2/2  2026-01-08" in lines[3] and lines[3].endswith("~26 s")


def test_the_pace_comes_from_the_lakes_run_reports(tmp_path):
    folder = tmp_path / "reports" / "json_to_parquet"
    folder.mkdir(parents=True)
    for i, (seconds, size) in enumerate([(30, 1e9), (90, 2e9)]):
        run_id = f"json_to_parquet-2026010{i + 1}T000000Z-0000000{i}"
        (folder / f"{run_id}.json").write_text(json.dumps({
            "job": "json_to_parquet", "run_id": run_id, "status": "succeeded",
            "started_at": "2026-01-01T00:00:00.000000Z", "finished_at": f"2026-01-01T00:{seconds // 60:02d}:"
            f"{seconds % 60:02d}.000000Z", "partitions": [], "totals": {"input_bytes": size}}))
    config = cli.config_of(cli.build_parser().parse_args(["runs", "--config", str(write_config(tmp_path))]))
    pace = backfill.history_pace(config, "local")
    assert (pace.per_run, pace.per_gb, pace.runs) == (0.0, 40.0, 2)  # a negative per-run fit: all per GB


def test_the_raw_listing_counts_day_folders_and_bytes_without_spark(tmp_path):
    raw = tmp_path / "raw"
    a = write_day(raw, "web", D("2026-01-01"), events(D("2026-01-01"), 5, "a"))
    b = write_day(raw, "ios", D("2026-01-01"), events(D("2026-01-01"), 3, "b"))
    c = write_day(raw, "ios", D("2026-01-03"), events(D("2026-01-03"), 3, "c"))
    write_day(raw, "ios", D("2026-01-05"), events(D("2026-01-05"), 3, "d"))  # outside the range
    (raw / "_hidden").mkdir()
    config = cli.config_of(cli.build_parser().parse_args(["runs", "--config", str(write_config(tmp_path))]))
    days = [D("2026-01-01"), D("2026-01-02"), D("2026-01-03")]
    assert backfill.list_raw(config, [], days) == {
        D("2026-01-01"): (2, a.stat().st_size + b.stat().st_size), D("2026-01-03"): (1, c.stat().st_size)}
    assert backfill.list_raw(config, ["web"], days) == {D("2026-01-01"): (1, a.stat().st_size)}


# --------------------------------------------------------------------------------------------------- running


def test_batches_run_in_order_and_stop_at_the_first_failure(capsys):
    batches = [Batch(D(f"2026-01-0{i}"), D(f"2026-01-0{i}"), 1, 1, 1) for i in range(1, 5)]
    ran = []

    def run_batch(batch: Batch) -> int:
        ran.append(batch.first)
        return 1 if batch.first == D("2026-01-03") else 0

    assert backfill_command.run_batches(batches, run_batch) == batches[2]
    assert ran == [D("2026-01-01"), D("2026-01-02"), D("2026-01-03")]
    assert "batch 3/4 2026-01-03 failed (exit 1)" in capsys.readouterr().out
    assert backfill_command.run_batches(batches[:2], lambda b: 0) is None


def test_the_resume_line_is_the_same_backfill_from_the_failed_batch():
    failed = Batch(D("2026-01-07"), D("2026-01-09"), 3, 3, 1)
    line = backfill.resume_command(failed, D("2026-01-31"), 3, "serverless", "conf/my lake.yaml", ["ios"],
                                   ["spark.x=1"], ["--application-id", "00a", "--conf", "fs.s3a.secret.key=K"])
    words = shlex.split(line)
    assert words[:2] == ["lake", "backfill"] and "K" not in line
    args, passed = cli.build_parser().parse_known_args(words[1:])
    assert (args.config, args.start, args.end, args.batch_days, args.mode) == (
        "conf/my lake.yaml", "2026-01-07", "2026-01-31", 3, "serverless")
    assert (args.source, args.set) == (["ios"], ["spark.x=1"])
    assert passed == ["--application-id", "00a", "--conf", "fs.s3a.secret.key=*********(redacted)"]


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, capsys, monkeypatch):
    for day in ("2026-01-01", "2026-01-02", "2026-01-05"):
        write_day(tmp_path / "raw", "web", D(day), events(D(day), 20, "x"))
    monkeypatch.setattr(backfill_command.submit, "run_local", lambda argv: pytest.fail("a batch ran"))
    code = cli.main(["backfill", "--config", str(write_config(tmp_path)), "--start", "2026-01-01", "--end",
                     "2026-01-06", "--batch-days", "2", "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].startswith("backfill 2026-01-01..2026-01-06: 2 batch(es), 3 day(s) with raw data (3 day folder(s))")
    assert "no json_to_parquet run on local in the history" in out[1]
    assert [line.split()[2] for line in out[2:]] == ["2026-01-01..2026-01-02", "2026-01-05..2026-01-06"]
    assert not (tmp_path / "tables").exists()


def test_the_batches_go_through_lake_submit_with_its_options(tmp_path, monkeypatch, capsys):
    for day in ("2026-01-01", "2026-01-03"):
        write_day(tmp_path / "raw", "web", D(day), events(D(day), 5, "x"))
    config = str(write_config(tmp_path))
    sent = []
    monkeypatch.setattr(backfill_command.submit, "run_remote",
                        lambda mode, argv, prog: sent.append((mode, argv, prog)) or (1 if len(sent) == 2 else 0))
    code = cli.main(["backfill", "--config", config, "--start", "2026-01-01", "--end", "2026-01-04",
                     "--batch-days", "2", "--mode", "emr", "--cluster-id", "j-1", "--artifacts", "s3://b/p",
                     "--conf", "spark.executor.cores=4"])
    assert code == 1
    options = ["--cluster-id", "j-1", "--artifacts", "s3://b/p", "--conf", "spark.executor.cores=4", "--wait"]
    assert sent == [
        ("emr", [*options, "json_to_parquet", "--config", config, "--date", "2026-01-01", "--end-date", "2026-01-02",
                 "--changed"], "lake backfill"),
        ("emr", [*options, "json_to_parquet", "--config", config, "--date", "2026-01-03", "--end-date", "2026-01-04",
                 "--changed"], "lake backfill")]
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].strip() == (
        f"lake backfill --config {config} --start 2026-01-03 --end 2026-01-04 --batch-days 2 --mode emr "
        "--cluster-id j-1 --artifacts s3://b/p --conf spark.executor.cores=4")


def test_the_configs_submit_keys_fill_the_options_not_given(tmp_path, monkeypatch, capsys):
    write_day(tmp_path / "raw", "web", D("2026-01-01"), events(D("2026-01-01"), 5, "x"))
    config = write_config(tmp_path)
    config.write_text(config.read_text() + "submit: {artifacts: 's3://bkt/p', cluster_id: j-cfg, application_id: 00a}\n")
    sent = []
    monkeypatch.setattr(backfill_command.submit, "run_remote", lambda mode, argv, prog: sent.append(argv) or 1)
    assert cli.main(["backfill", "--config", str(config), "--start", "2026-01-01", "--end", "2026-01-01",
                     "--mode", "emr", "--cluster-id", "j-given"]) == 1
    assert sent == [["--cluster-id", "j-given", "--artifacts", "s3://bkt/p", "--wait", "json_to_parquet", "--config",
                     str(config), "--date", "2026-01-01", "--end-date", "2026-01-01", "--changed"]]
    resume = capsys.readouterr().err.strip().splitlines()[-1].strip()
    assert resume.endswith("--mode emr --cluster-id j-given"), "the config gives the rest again"


@pytest.mark.parametrize("argv, needle", [
    (["--mode", "local", "--cluster-id", "j-1"], "lake submit's options go with --mode emr or serverless"),
    (["--mode", "emr", "--artifacts", "s3://b/p"], "the following arguments are required: --cluster-id"),
    (["--mode", "emr", "--cluster-id", "j-1", "--artifacts", "s3://b/p", "--no-such"], "unrecognized arguments"),
])
def test_wrong_submit_options_are_refused_before_anything_runs(tmp_path, capsys, argv, needle):
    write_day(tmp_path / "raw", "web", D("2026-01-01"), events(D("2026-01-01"), 5, "x"))
    try:
        code = cli.main(["backfill", "--config", str(write_config(tmp_path)), "--start", "2026-01-01", "--end",
                         "2026-01-01", *argv])
    except SystemExit as exc:  # lake submit's parser refused, after printing its usage line
        code = exc.code
    assert code == 2
    assert needle in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------- resuming


def _takes_changed() -> bool:
    from jobs import json_to_parquet
    from lakelib.submit import takes_option

    return takes_option(json_to_parquet.build_parser(), "--changed")


@pytest.mark.skipif(not _takes_changed(), reason="json_to_parquet has no --changed option yet (issue 25, first half)")
def test_a_backfill_stopped_at_its_third_batch_resumes_there_and_ends_as_an_uninterrupted_one(spark, tmp_path,
                                                                                               monkeypatch, capsys):
    from chispa import assert_df_equality
    from pyspark.sql import functions as F

    from jobs import json_to_parquet
    from lakelib.schema import EVENTS, spark_schema

    days = [D(f"2026-01-0{i}") for i in range(1, 5)]
    for root in (tmp_path / "uninterrupted", tmp_path / "interrupted"):
        for day in days:
            write_day(root / "raw", "web", day, events(day, 30, "w"))
            write_day(root / "raw", "ios", day, events(day, 10, "i"))
    good = write_day(tmp_path / "interrupted" / "raw", "web", days[2], events(days[2], 2000, "b"), "broken.gz")
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 2])  # the third batch's run fails on a truncated file
    ran: list[list[str]] = []

    def in_process(argv: list[str]) -> int:  # the batch's job in this process, on the suite's session
        ran.append(argv)
        return json_to_parquet.main(argv[1:])

    monkeypatch.setattr(backfill_command.submit, "run_local", in_process)

    def backfill_of(root: Path, start: str = "2026-01-01") -> int:
        return cli.main(["backfill", "--config", str(write_config(root)), "--start", start, "--end", "2026-01-04",
                         "--batch-days", "1"])

    assert backfill_of(tmp_path / "uninterrupted") == 0
    ran.clear()
    capsys.readouterr()
    assert backfill_of(tmp_path / "interrupted") == 1
    assert [a[a.index("--date") + 1] for a in ran] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    resume = shlex.split(capsys.readouterr().err.strip().splitlines()[-1])
    assert resume[resume.index("--start") + 1] == "2026-01-03"

    (good.parent / "broken.gz").unlink()  # the fault is fixed; the printed command resumes
    ran.clear()
    assert cli.main(resume[1:]) == 0
    assert [a[a.index("--date") + 1] for a in ran] == ["2026-01-03", "2026-01-04"]

    def table(root: Path):
        path = f"{root}/tables/events"
        df = spark.read.schema(spark_schema(EVENTS, with_partitions=True)).option("basePath", path).parquet(
            f"{path}/sourceid=*/dt=*")
        return df.select(*[F.to_json(c).alias(c) if t.startswith("map") else F.col(c) for c, t in df.dtypes])

    assert_df_equality(table(tmp_path / "interrupted"), table(tmp_path / "uninterrupted"), ignore_row_order=True)


@pytest.mark.skipif(not _takes_changed(), reason="json_to_parquet has no --changed option yet (issue 25, first half)")
@pytest.mark.parametrize("status, code, runs", [("SUCCESS", 0, 2), ("FAILED", 1, 1)])
def test_serverless_batches_are_submitted_in_order_each_waited_for(aws, tmp_path, monkeypatch, capsys, status, code,
                                                                    runs):
    import sys

    import boto3
    from moto.emrserverless import models

    monkeypatch.setattr(models, "JOB_STATUS", status)  # moto's job runs are born in this state
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")  # the aws CLI
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in ("lake-raw", "lake-data", "lake-artifacts"):
        s3.create_bucket(Bucket=bucket)
    for day in ("2026-01-01", "2026-01-03"):
        s3.put_object(Bucket="lake-raw", Key=f"segment-logs/web/{day_folder(D(day))}/part-0.gz",
                      Body=gzip.compress("\n".join(events(D(day), 3, "s")).encode()))
    config = tmp_path / "s3.yaml"
    config.write_text("lake:\n  raw: s3://lake-raw/segment-logs\n  tables: s3://lake-data/tables\n"
                      "  quarantine: s3://lake-data/quarantine\n  reports: s3://lake-data/reports\n"
                      "catalog: {kind: none}\n")
    client = boto3.client("emr-serverless", region_name="us-east-1")
    app = client.create_application(name="lake", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    got = cli.main(["backfill", "--config", str(config), "--start", "2026-01-01", "--end", "2026-01-04",
                    "--batch-days", "2", "--mode", "serverless", "--application-id", app, "--execution-role-arn",
                    "arn:aws:iam::123456789012:role/lake", "--artifacts", "s3://lake-artifacts/emr",
                    "--poll-seconds", "0.1"])
    out, err = capsys.readouterr()
    assert got == code, err
    assert out.startswith("backfill 2026-01-01..2026-01-04: 2 batch(es), 2 day(s) with raw data")  # listed on S3
    run_ids = [line for line in out.splitlines() if not line.startswith(("backfill", "expected", "  batch"))]
    assert len(run_ids) == runs
    dates = [client.get_job_run(applicationId=app, jobRunId=r)["jobRun"]["jobDriver"]["sparkSubmit"][
        "entryPointArguments"][2:7] for r in run_ids]
    assert dates == [["--date", "2026-01-01", "--end-date", "2026-01-02", "--changed"],
                     ["--date", "2026-01-03", "--end-date", "2026-01-04", "--changed"]][:runs]
    if status == "FAILED":
        assert err.strip().splitlines()[-1].strip().startswith(
            f"lake backfill --config {config} --start 2026-01-01 --end 2026-01-04 --batch-days 2 --mode serverless "
            f"--application-id {app}")


def test_an_interrupted_batch_stops_the_backfill_like_a_failed_one(capsys):
    batches = [Batch(D("2026-01-01"), D("2026-01-01"), 1, 1, 1), Batch(D("2026-01-02"), D("2026-01-02"), 1, 1, 1)]

    def interrupted(batch: Batch) -> int:
        raise KeyboardInterrupt

    assert backfill_command.run_batches(batches, interrupted) == batches[0]
    assert "batch 1/2 2026-01-01 failed (exit 130)" in capsys.readouterr().out


def test_a_source_that_is_not_an_id_is_refused_before_any_listing(tmp_path, capsys):
    code = cli.main(["backfill", "--config", str(write_config(tmp_path)), "--start", "2026-01-01", "--end",
                     "2026-01-01", "--source", "../etc"])
    assert code == 2 and "--source '../etc' is not a source id" in capsys.readouterr().err
