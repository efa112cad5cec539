"""Shared fixtures: one SparkSession for the whole run, and moto's server on 127.0.0.1 for AWS round trips."""
from __future__ import annotations

import logging
import os
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC_EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "segment-spec-examples.ndjson"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Timestamps come back to Python as local times: make local UTC, as on EMR.
os.environ["TZ"] = "UTC"
time.tzset()

# Fake credentials for every AWS call the tests make: nothing may ever reach real AWS.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """One local[2] session with Hive support (an embedded metastore in a temporary folder), in UTC."""
    from lakelib.session import build_session

    home = tmp_path_factory.mktemp("spark")
    session = build_session(
        None,
        "lakelib-tests",
        master="local[2]",
        hive=True,
        extra={
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": f"file://{home}/warehouse",
            "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={home}/metastore_db;create=true",
            "spark.driver.memory": "2g",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's server on 127.0.0.1 (a real HTTP endpoint for boto3 and the aws CLI), for the whole run."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # requests that fail on purpose are not news
    for key, value in AWS_TEST_ENV.items():
        os.environ.setdefault(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """A clean moto state for one test, with the environment the aws CLI and boto3 need to reach it."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    for key, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture(scope="session")
def spec_examples() -> list[str]:
    """The example messages of Segment's spec docs, one JSON line each."""
    return [line for line in SPEC_EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
