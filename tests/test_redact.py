"""Secret values never reach a run report, the job's error line or anything else built with lakelib.redact."""
from __future__ import annotations

import argparse
import json

import pytest

from lakelib.redact import REDACTED, redact, redact_args, redact_mapping, redact_text, redact_value
from lakelib.runner import job_parser, run_job

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize("args, expected", [
    (["--set", f"spark.spark.hadoop.fs.s3a.secret.key={SECRET}"],
     ["--set", f"spark.spark.hadoop.fs.s3a.secret.key={REDACTED}"]),
    ([f"--set=spark.spark.hadoop.fs.s3a.access.key={SECRET}"], [f"--set=spark.spark.hadoop.fs.s3a.access.key={REDACTED}"]),
    (["--conf", f"spark.hadoop.fs.s3a.accesskey={SECRET}"], ["--conf", f"spark.hadoop.fs.s3a.accesskey={REDACTED}"]),
    (["--conf", f"spark.hadoop.fs.s3a.session.TOKEN={SECRET}"], ["--conf", f"spark.hadoop.fs.s3a.session.TOKEN={REDACTED}"]),
    (["--db-password", SECRET, "--date", "2020-01-02"], ["--db-password", REDACTED, "--date", "2020-01-02"]),
    ([f"--api-token={SECRET}"], [f"--api-token={REDACTED}"]),
    (["--password", "--date", "2020-01-02"], ["--password", "--date", "2020-01-02"]),
    (["--config", "conf/lake.yaml", "--set", "write.target_file_mb=64"],
     ["--config", "conf/lake.yaml", "--set", "write.target_file_mb=64"]),
    # a value that matches is secret too (Spark's rule): its secret parts, or all of it
    (["--config", "conf/token-rotation.yaml"], ["--config", REDACTED]),
    (["--url", f"jdbc:postgresql://db:5432/lake?user=etl&password={SECRET}&ssl=true"],
     ["--url", f"jdbc:postgresql://db:5432/lake?user=etl&password={REDACTED}&ssl=true"]),
    ([f"--set=sink.url=jdbc:sqlserver://db;user=etl;Password={SECRET};encrypt=true"],
     [f"--set=sink.url=jdbc:sqlserver://db;user=etl;Password={REDACTED};encrypt=true"]),
    (["--webhook", f"https://hooks.example.com/x?channel=ops&token={SECRET}"],
     ["--webhook", f"https://hooks.example.com/x?channel=ops&token={REDACTED}"]),
    (["--password", f"-{SECRET}", "--date", "2020-01-02"], ["--password", REDACTED, "--date", "2020-01-02"]),
    (["--api-token", "--x"], ["--api-token", "--x"]),
    # a URL's password, whatever the key (Spark's rule would miss it: no secret word in sight)
    (["--url", f"postgresql://etl:{SECRET}@db:5432/lake"], ["--url", f"postgresql://etl:{REDACTED}@db:5432/lake"]),
    ([f"--set=lake.raw=s3a://AKIAEXAMPLE:{SECRET}@bucket/raw", "--date", "2020-01-02"],
     [f"--set=lake.raw=s3a://AKIAEXAMPLE:{REDACTED}@bucket/raw", "--date", "2020-01-02"]),
    (["--source", "https://cdn.example.com:8443/a@b", "--to", "user@example.com"],
     ["--source", "https://cdn.example.com:8443/a@b", "--to", "user@example.com"]),
])
def test_redact_args_hides_values_whose_key_or_value_looks_secret(args, expected):
    assert redact_args(args) == expected


def test_redact_value_and_mapping_follow_sparks_default_regex():
    assert redact_value("spark.hadoop.fs.s3a.secret.key", SECRET) == REDACTED
    assert redact_value("spark.sql.shuffle.partitions", "8") == "8"
    assert redact_mapping({"AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "eu-west-1"}) == {
        "AWS_SECRET_ACCESS_KEY": REDACTED, "AWS_REGION": "eu-west-1"}


def test_one_rule_for_requests_names_and_text():
    request = {"Name": f"nightly --password -{SECRET}", "password": SECRET, "Timeout": 5,
               "sparkSubmitParameters": f"--py-files s3://b/l.zip --conf spark.hadoop.fs.s3a.secret.key={SECRET}",
               "Args": ["--url", f"jdbc:mysql://db/lake?password={SECRET}"]}
    printed = redact(request)
    assert SECRET not in json.dumps(printed) and printed["Timeout"] == 5
    assert printed["sparkSubmitParameters"].endswith(f"--conf spark.hadoop.fs.s3a.secret.key={REDACTED}")
    assert printed["Name"] == f"nightly --password {REDACTED}" and printed["password"] == REDACTED
    assert redact(printed) == printed, "redacting twice changes nothing"
    assert redact({"Name": f"load mysql://etl:{SECRET}@db/lake"}) == {"Name": f"load mysql://etl:{REDACTED}@db/lake"}
    assert redact_text(f"cannot reach mysql://etl:{SECRET}@db", ["--url", f"mysql://etl:{SECRET}@db"]) == \
        f"cannot reach mysql://etl:{REDACTED}@db"
    args = ["--url", f"jdbc:mysql://db/lake?password={SECRET}"]
    assert redact_text(f"cannot reach jdbc:mysql://db/lake?password={SECRET}", args) == \
        f"cannot reach jdbc:mysql://db/lake?password={REDACTED}"


def test_a_secret_set_on_the_command_line_reaches_neither_the_report_nor_stderr(tmp_path, capsys):
    config = tmp_path / "job.yaml"
    config.write_text(f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/t, quarantine: {tmp_path}/q, "
                      f"reports: {tmp_path}/reports}}\ncatalog: {{kind: none}}\n")
    report = tmp_path / "report.json"
    argv = ["--config", str(config), "--report", str(report),
            "--set", f"spark.spark.hadoop.fs.s3a.secret.key={SECRET}"]

    def body(args: argparse.Namespace, cfg, rep) -> str:
        assert cfg.spark["spark.hadoop.fs.s3a.secret.key"] == SECRET  # the job itself gets the real value
        raise ValueError(f"S3A refused the key {SECRET}")  # a failure that quotes it

    assert run_job("demo", job_parser("demo", "a test job"), argv, body) == 1

    text = report.read_text()
    written = json.loads(text)
    assert written["arguments"][-1] == f"spark.spark.hadoop.fs.s3a.secret.key={REDACTED}"
    assert written["error"] == f"S3A refused the key {REDACTED}"
    assert SECRET not in text
    assert SECRET not in "".join(p.read_text() for p in (tmp_path / "reports").rglob("*.json"))
    captured = capsys.readouterr()
    assert SECRET not in captured.err + captured.out


def test_a_url_password_in_the_config_reaches_neither_the_log_nor_the_report(tmp_path, capsys):
    """A path may carry credentials (``s3a://KEY:SECRET@bucket``, a JDBC URL): the job gets them, people do not."""
    import logging

    config = tmp_path / "job.yaml"
    config.write_text(f"lake: {{raw: {tmp_path}/raw, tables: {tmp_path}/t, quarantine: {tmp_path}/q, "
                      f"reports: {tmp_path}/reports}}\ncatalog: {{kind: none}}\n")
    report = tmp_path / "report.json"
    source = f"s3a://AKIAEXAMPLE:{SECRET}@segment-logs/raw"

    def body(args: argparse.Namespace, cfg, rep) -> None:
        logging.getLogger("jobs.demo").info("reading %s", source)
        rep.extra["read_from"] = source

    assert run_job("demo", job_parser("demo", "a test job"), ["--config", str(config), "--report", str(report)],
                   body) == 0
    err = capsys.readouterr().err
    assert f"reading s3a://AKIAEXAMPLE:{REDACTED}@segment-logs/raw" in err and SECRET not in err
    assert json.loads(report.read_text())["read_from"] == f"s3a://AKIAEXAMPLE:{REDACTED}@segment-logs/raw"
    pages = [report.with_suffix(".html"), *(tmp_path / "reports").rglob("*.html")]
    assert len(pages) == 2 and all(SECRET not in p.read_text() for p in pages)
