"""The lake from a laptop: lakelib.lake without Spark (pyarrow, pandas), against local files and moto's S3 and Glue,
`lake runs`/`lake chart`/`lake report` without PySpark, charts that keep their size, the HTML run report."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from lakelib import lake
from lakelib.catalog import Partition, open_catalog
from lakelib.cli import main
from lakelib.config import load_config
from lakelib.errors import MissingExtraError, UsageError
from lakelib.schema import MESSAGE_TYPE_COUNTS_DAILY

REPO = Path(__file__).resolve().parent.parent
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]
BUCKET = "laptop-lake"
#: Runs `lake` in a fresh interpreter where PySpark cannot be imported (an install without the spark extra).
NO_PYSPARK = ("import sys; sys.modules['pyspark'] = None; sys.modules['py4j'] = None; "
              "from lakelib.cli import main; sys.exit(main(sys.argv[1:]))")


def config_text(root: str, kind: str = "none", endpoint: str = "", database: str = "segment_logs") -> str:
    glue = f", glue: {{region: us-east-1, endpoint_url: {endpoint}}}" if kind == "glue" else ""
    return (f"lake: {{raw: {root}/raw, tables: {root}/tables, quarantine: {root}/quarantine, "
            f"reports: {root}/reports}}\ncatalog: {{kind: {kind}, database: {database}{glue}}}\n")


def write_config(folder: Path, text: str) -> str:
    path = folder / f"lake-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def local_lake(spark, tmp_path_factory):
    """What `make demo`'s jobs leave, smaller: a local lake (catalog none) made by real job runs."""
    from jobs import event_tables, json_to_parquet, message_type_counts

    root = tmp_path_factory.mktemp("laptop")
    path = write_config(root, config_text(str(root)))
    assert main(["sample", "--out", str(root / "raw"), "--sources", "2", "--days", "3", "--events-per-day", "120",
                 "--files-per-day", "1", "--start-date", DAYS[0]]) == 0
    days = ["--date", DAYS[0], "--end-date", DAYS[2]]
    assert json_to_parquet.main(["--config", path, *days]) == 0
    assert message_type_counts.main(["--config", path, "--period", "day", *days]) == 0
    assert message_type_counts.main(["--config", path, "--period", "year", "--date", DAYS[2]]) == 0
    assert event_tables.main(["--config", path, *days]) == 0
    return root, load_config(path)


def upload(folder: Path, bucket: str, prefix: str) -> None:
    s3 = boto3.client("s3")
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.upload_file(str(file), bucket, f"{prefix}/{file.relative_to(folder).as_posix()}")


@pytest.fixture
def s3_lake(local_lake, aws, tmp_path):
    """The local lake uploaded to moto's S3 (Spark here has no S3 connector): a config for it, catalog none."""
    root, _ = local_lake
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    for part in ("tables", "quarantine", "reports"):
        upload(root / part, BUCKET, f"lake/{part}")
    return write_config(tmp_path, config_text(f"s3://{BUCKET}/lake"))


def no_pyspark(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_PYSPARK, *argv], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_without_a_session_the_reads_are_pandas_frames_equal_to_sparks(spark, local_lake):
    _, config = local_lake
    for read in (lake.daily_counts, lake.yearly_counts):
        got = read(None, config, sources="web", start=DAYS[0], end=DAYS[2])
        want = read(spark, config, sources="web", start=DAYS[0], end=DAYS[2]).toPandas()
        assert list(got.columns) == list(want.columns) and len(got) > 0
        key = list(got.columns)
        assert got.sort_values(key).values.tolist() == want.sort_values(key).values.tolist()
    every = lake.quarantine(None, config)
    assert list(every.columns) == ["reason", "raw", "file", "run_id", "sourceid", "dt"]
    assert sorted(every["raw"]) == sorted(r["raw"] for r in lake.quarantine(spark, config).collect())
    assert len(every) == 2 and len(lake.quarantine(None, config, limit=1)) == 1
    runs = lake.runs(None, config, jobs="json_to_parquet")
    assert runs["status"].tolist() == ["succeeded"] and runs["job"].tolist() == ["json_to_parquet"]
    assert len(lake.runs(None, config, last=2)) == 2


def test_unknown_sources_reasons_tables_and_inverted_ranges_are_errors_naming_what_exists(spark, local_lake):
    _, config = local_lake
    for session in (None, spark):
        with pytest.raises(UsageError, match=r"has no source nope \(it has: ios, web\)"):
            lake.daily_counts(session, config, sources=["web", "nope"])
        with pytest.raises(UsageError, match="start 2026-01-03 is after end 2026-01-01"):
            lake.events(session, config, start=DAYS[2], end=DAYS[0])
        with pytest.raises(UsageError, match="no quarantine reason invalid_jsn .*invalid_json"):
            lake.quarantine(session, config, reasons=["invalid_jsn"])
    with pytest.raises(UsageError, match=r"no typed table 'nope' either .*tracks"):
        lake.table(spark, config, "nope")


def test_table_reads_typed_tables_with_either_engine(spark, local_lake):
    _, config = local_lake
    tracks = lake.table(spark, config, "tracks", sources="web", start=DAYS[0], end=DAYS[0])
    assert tracks.count() > 0 and set(tracks.columns) >= {"messageid", "event", "sourceid", "dt"}
    local = lake.table(None, config, "tracks", sources="web", start=DAYS[0], end=DAYS[0],
                       columns=["messageid", "event"])
    assert sorted(local["messageid"]) == sorted(r["messageid"] for r in tracks.select("messageid").collect())


def test_an_s3_lake_read_from_a_laptop_without_pyspark(s3_lake, tmp_path):
    runs = no_pyspark("runs", "--config", s3_lake, "--last", "3", cwd=tmp_path)
    assert runs.returncode == 0, runs.stderr
    lines = runs.stdout.splitlines()
    assert lines[0].startswith("started (UTC)") and len(lines) == 4 and "event_tables" in lines[1]
    for chart in (["counts", "--source", "ios"], ["quarantine"]):
        out = tmp_path / f"{chart[0]}.png"
        done = no_pyspark("chart", *chart, "--config", s3_lake, "--start", DAYS[0], "--end", DAYS[2],
                          "--out", str(out), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert png_size(out) == (1000, 450)
    page = no_pyspark("report", "--config", s3_lake, cwd=tmp_path)
    assert page.returncode == 0 and page.stdout.strip().startswith(f"s3://{BUCKET}/lake/reports/event_tables/")
    sql = no_pyspark("sql", "--config", s3_lake, "SELECT 1", cwd=tmp_path)
    assert sql.returncode == 1 and sql.stderr.strip().splitlines() == [
        "lake sql: error: this needs pyspark: pip install 'lakelib[spark]'"]

    config = load_config(s3_lake)
    counts = lake.daily_counts(None, config, sources="ios", start=DAYS[1], end=DAYS[2])
    assert sorted(set(counts["dt"])) == DAYS[1:] and counts["message_count"].sum() > 0
    assert type(counts).__module__.startswith("pandas")


def test_with_glue_a_laptop_reads_the_locations_the_catalog_holds(s3_lake, aws, tmp_path):
    """Published partitions live in version folders the catalog points at; the default folders are not read."""
    config = load_config(write_config(tmp_path, config_text(f"s3://{BUCKET}/lake", "glue", aws,
                                                            f"lake_{uuid.uuid4().hex[:8]}")))
    s3 = boto3.client("s3")
    table, parts = MESSAGE_TYPE_COUNTS_DAILY, []
    for day in DAYS[:2]:
        default = f"lake/tables/{table.name}/sourceid=web/dt={day}/"
        version = f"lake/tables/_versions/{table.name}/sourceid=web/dt={day}/v=run-{day}/"
        for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=default)["Contents"]:
            s3.copy_object(Bucket=BUCKET, Key=version + obj["Key"][len(default):],
                           CopySource={"Bucket": BUCKET, "Key": obj["Key"]})
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
        parts.append(Partition({"sourceid": "web", "dt": day}, f"s3://{BUCKET}/{version.rstrip('/')}"))
    catalog = open_catalog(config)
    catalog.ensure_table(table, f"{config.lake.tables}/{table.name}")
    catalog.register_partitions(table, parts)

    got = lake.daily_counts(None, config, start=DAYS[0], end=DAYS[2])
    assert sorted(set(zip(got["sourceid"], got["dt"]))) == [("web", d) for d in DAYS[:2]]
    with pytest.raises(UsageError, match=r"no source ios \(it has: web\)"):
        lake.daily_counts(None, config, sources="ios")


def test_with_the_spark_catalog_a_read_without_session_goes_through_spark_or_names_the_extra(
        spark, local_lake, tmp_path, monkeypatch):
    root, _ = local_lake
    config = load_config(write_config(tmp_path, config_text(str(root), "spark", database=f"l{uuid.uuid4().hex[:8]}")))
    got = lake.daily_counts(None, config)  # through the test's (active) session, which reads by path here
    want = lake.daily_counts(spark, config).toPandas()
    assert list(got.columns) == list(want.columns) and len(got) == len(want) > 0
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(MissingExtraError, match=r"needs PySpark: pip install 'lakelib\[spark\]'"):
        lake.daily_counts(None, config)


def test_a_365_day_chart_keeps_its_width_and_reads_as_dates(tmp_path):
    from datetime import date, timedelta

    from lakelib.charts import MAX_BAR_DAYS, pivot, stacked

    def draw(n: int):
        days = [(date(2025, 1, 1) + timedelta(days=i)).isoformat() for i in range(n)]
        series = pivot(((d, t, 10 + i % 7) for i, d in enumerate(days) for t in ("track", "page")), days,
                       ("track", "page"))
        fig = stacked(days, series, title=f"web: messages by type, {days[0]} to {days[-1]}", ylabel="messages",
                      legend="type")
        out = tmp_path / f"{n}.png"
        fig.savefig(out, dpi=100)
        return fig.axes[0], out

    week, week_png = draw(7)
    year, year_png = draw(365)
    assert png_size(year_png) == png_size(week_png) == (1000, 450)
    assert len(week.patches) == 14 and len(year.patches) == 0 and len(year.collections) == 2  # bars, then areas
    assert 3 <= len([t for t in year.get_xticklabels() if t.get_text()]) <= 13
    assert year.get_xlabel() == "received day (UTC)" and year.get_title().endswith("2025-01-01 to 2025-12-31")
    assert [t.get_text() for t in year.get_legend().get_texts()] == ["page", "track"], "top of the stack first"
    assert MAX_BAR_DAYS >= 28


def test_the_quarantine_chart_is_a_share_of_the_lines_each_run_read(local_lake):
    _, config = local_lake
    from lakelib.charts import quarantine_chart
    from lakelib.run_reports import conversions

    parts = conversions(config.lake.reports, ["web"], DAYS[0], DAYS[0])
    assert len(parts) == 1 and parts[0]["quarantined"] > 0
    ax = quarantine_chart(None, config, "web", DAYS[0], DAYS[0]).axes[0]
    total = sum(p.get_height() for p in ax.patches)
    assert total == pytest.approx(100.0 * parts[0]["quarantined"] / parts[0]["lines_read"])
    assert ax.get_ylabel() == "% of lines read"
    counts = quarantine_chart(None, config, "web", DAYS[0], DAYS[0], share=False).axes[0]
    assert sum(p.get_height() for p in counts.patches) == parts[0]["quarantined"]
    with pytest.raises(UsageError, match="ios, web"):
        quarantine_chart(None, config, "nope", DAYS[0], DAYS[0])


def test_lake_chart_refuses_an_unknown_source_or_an_inverted_range(local_lake, tmp_path, capsys):
    _, config = local_lake
    out = str(tmp_path / "c.png")
    args = ["--config", config.path, "--out", out]
    assert main(["chart", "counts", "--source", "nope", "--start", DAYS[0], "--end", DAYS[2], *args]) == 2
    assert "it has: ios, web" in capsys.readouterr().err
    assert main(["chart", "quarantine", "--start", DAYS[2], "--end", DAYS[0], *args]) == 2
    assert "after end" in capsys.readouterr().err and not os.path.exists(out)


def test_runs_prints_table_json_and_csv(local_lake, capsys):
    _, config = local_lake
    assert main(["runs", "--config", config.path, "--format", "json", "--last", "2"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["job"] for r in rows] == ["event_tables", "message_type_counts"]
    assert rows[0]["status"] == "succeeded" and rows[0]["run_id"].startswith("event_tables-")
    assert main(["runs", "--config", config.path, "--format", "csv", "--job", "json_to_parquet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("job,run_id,status,started_at") and len(lines) == 2


def test_lake_sql_prints_csv_and_json(spark, local_lake, capsys, monkeypatch):
    _, config = local_lake
    monkeypatch.setattr(spark, "stop", lambda: None)  # the command stops its session: keep the suite's
    assert main(["sql", "--config", config.path, "--format", "csv", "SELECT 1 AS a, 'x' AS b"]) == 0
    assert capsys.readouterr().out.splitlines() == ["a,b", "1,x"]
    monkeypatch.setenv("LAKELIB_CONFIG", config.path)  # the one --config rule: sql falls back too
    assert main(["sql", "--format", "json", "SELECT 2 AS a"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"a": 2}]


def test_a_closed_pipe_is_quiet(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LAKELIB_CONFIG"}
    done = subprocess.run(f"'{sys.executable}' -m lakelib.cli ddl events --location s3://b/t/events | head -3",
                          shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert len(done.stdout.splitlines()) == 3 and done.stderr == ""


def test_lake_lists_its_public_names():
    assert "table" in lake.__all__ and "TYPE_CHECKING" not in lake.__all__
    assert all(hasattr(lake, name) for name in lake.__all__)


# -- the HTML run report ----------------------------------------------------------------------------------------


def test_every_run_writes_an_html_page_beside_its_json_report_and_lake_report_prints_it(local_lake, capsys):
    root, config = local_lake
    reports = sorted((root / "reports").rglob("*.json"))
    assert reports and all(r.with_suffix(".html").is_file() for r in reports)
    assert main(["report", "--config", config.path]) == 0
    last = Path(capsys.readouterr().out.strip())
    assert last.parent.name == "event_tables" and last.suffix == ".html"
    run_id = next(r.stem for r in reports if r.parent.name == "json_to_parquet")
    assert main(["report", run_id, "--config", config.path]) == 0
    assert capsys.readouterr().out.strip() == str(root / "reports" / "json_to_parquet" / f"{run_id}.html")
    assert main(["report", "json_to_parquet-20990101T000000Z-00000000", "--config", config.path]) == 2
    assert "last runs: event_tables-" in capsys.readouterr().err


def test_a_failed_run_shows_its_error_line(tmp_path):
    from lakelib.report import RunReport, write_report

    report = RunReport("json_to_parquet")
    report.finish("failed", "no raw data for <web> on 2026-01-02")
    write_report(report, str(tmp_path), None, None)
    page = (tmp_path / "json_to_parquet" / f"{report.run_id}.html").read_text()
    assert 'class="error">error: no raw data for &lt;web&gt; on 2026-01-02</div>' in page


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed with apt when missing (skipped only when apt cannot install it)."""
    found = shutil.which("chromium")
    if found is None and shutil.which("apt-get") is not None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for step in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                                                    "chromium"]):
            subprocess.run(step, env=env, capture_output=True, timeout=900)
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian's chromium package is not installed and apt-get could not install it")
    return found


def test_the_html_report_shows_its_tables_and_charts_in_chromium(local_lake, chromium, tmp_path):
    root, _ = local_lake
    page = sorted((root / "reports" / "json_to_parquet").glob("*.html"))[-1]
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1200",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180, check=True)
    from matplotlib.image import imread

    pixels = (imread(str(shot))[:, :, :3] * 255).round().astype(int)

    def share(colour: str) -> float:
        rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
        return float((abs(pixels - rgb).sum(axis=2) <= 6).mean())

    from lakelib.html_report import FATES

    assert share("#dde6f3") > 0.002, "the tables' header cells"
    assert share(FATES[0][1]) > 0.01, "the rows-written bars"
    assert share(FATES[2][1]) > 0.0005, "the quarantined segments and the by-reason chart"


def test_without_pandas_a_read_without_session_names_the_extra(local_lake, monkeypatch, capsys):
    _, config = local_lake
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingExtraError, match=r"needs pandas: pip install 'lakelib\[notebook\]'"):
        lake.daily_counts(None, config)
    assert main(["chart", "counts", "--config", config.path, "--source", "web", "--start", DAYS[0], "--end", DAYS[0],
                 "--out", "unused.png"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "lake chart: error: reading the lake without Spark needs pandas: pip install 'lakelib[notebook]'"]
