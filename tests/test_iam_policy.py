"""docs/iam-policy.json, read as IAM reads it: every condition can match the actions it guards."""
from __future__ import annotations

import json

from tests.conftest import REPO

POLICY = json.loads((REPO / "docs" / "iam-policy.json").read_text(encoding="utf-8"))

#: S3 actions that carry the ``s3:prefix`` condition key (AWS service authorization reference, Amazon S3). On any
#: other action the key is absent, so a ``StringLike`` on it never matches and the statement grants nothing.
PREFIX_ACTIONS = {"s3:ListBucket", "s3:ListBucketVersions"}


def _actions(statement) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _allowed(action: str, resource: str) -> list[dict]:
    return [s for s in POLICY["Statement"]
            if s["Effect"] == "Allow" and action in _actions(s) and resource in s["Resource"]]


def test_an_s3_prefix_condition_guards_only_actions_that_have_the_key():
    for statement in POLICY["Statement"]:
        keys = {key for test in statement.get("Condition", {}).values() for key in test}
        if "s3:prefix" in keys:
            assert set(_actions(statement)) <= PREFIX_ACTIONS, statement["Sid"]


def test_the_lake_bucket_grants_multipart_upload_listing_and_prefix_limited_listing():
    uploads = _allowed("s3:ListBucketMultipartUploads", "arn:aws:s3:::example-segment-lake")
    assert uploads and all("Condition" not in s for s in uploads)
    listing = _allowed("s3:ListBucket", "arn:aws:s3:::example-segment-lake")
    assert [s["Condition"]["StringLike"]["s3:prefix"] for s in listing] == [
        ["tables", "tables/*", "quarantine", "quarantine/*", "reports", "reports/*"]]


def test_statement_ids_are_unique_and_valid():
    sids = [s["Sid"] for s in POLICY["Statement"]]
    assert len(sids) == len(set(sids))
    assert all(sid.isalnum() for sid in sids)
