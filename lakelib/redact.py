"""Hide secret values before lakelib writes or prints an argument list (run reports, EMR step names, dry runs).

Modelled on Spark's ``spark.redaction.regex``: in a ``key=value`` argument whose key looks secret, the value is
replaced. The arguments a job actually runs with are never changed here.
"""
from __future__ import annotations

import re
from typing import Iterable

#: Keys whose values are hidden (matched anywhere in the key, case-blind).
SECRET_KEY = re.compile(r"(?i)secret|password|token|access[.]?key")
REDACTED = "*********(redacted)"


def redact_args(args: Iterable[str]) -> list[str]:
    """``args`` with the value of every ``key=value`` whose key looks secret replaced by :data:`REDACTED`.

    >>> redact_args(["--set", "spark.hadoop.fs.s3a.secret.key=abc", "--date", "2024-01-02", "a.token=x=y"])
    ['--set', 'spark.hadoop.fs.s3a.secret.key=*********(redacted)', '--date', '2024-01-02', 'a.token=*********(redacted)']
    """
    out = []
    for arg in args:
        key, sep, _ = arg.partition("=")
        out.append(f"{key}={REDACTED}" if sep and SECRET_KEY.search(key) else arg)
    return out
