"""Hide secret values before lakelib writes or prints them (run reports, logs, EMR step names and arguments).

One rule, Spark's own: a value is secret when its *key* matches :data:`SECRET_KEY` (the default of Spark's
``spark.redaction.regex``, ``(?i)secret|password|token|access[.]?key``), and it is replaced by :data:`REDACTED`,
the text Spark shows in its UI. Keys are what is matched, never values: a path such as ``conf/token.yaml`` after
``--config`` is not a secret.

In a command line (:func:`redact_args`) the key of a value is:

- the part before the first ``=`` of ``KEY=VALUE`` (``--set spark.spark.hadoop.fs.s3a.secret.key=abc``,
  ``--conf spark.hadoop.fs.s3a.access.key=AKIA...``, ``Password=x``);
- the option of ``--option=VALUE``, or the ``KEY`` of ``--option=KEY=VALUE``;
- the option before a separate value (``--aws-secret-access-key VALUE``): an option whose name matches
  redacts the next argument, unless that argument is itself an option.

>>> redact_args(["--set", "spark.spark.hadoop.fs.s3a.secret.key=abc", "--date", "2020-01-02"])
['--set', 'spark.spark.hadoop.fs.s3a.secret.key=*********(redacted)', '--date', '2020-01-02']
>>> redact_value("spark.hadoop.fs.s3a.access.key", "AKIA123")
'*********(redacted)'
>>> redact_value("spark.executor.memory", "4g")
'4g'
"""
from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

#: Keys whose values are secret: Spark's default ``spark.redaction.regex``.
SECRET_KEY = re.compile(r"(?i)secret|password|token|access[.]?key")

#: What a secret value becomes (Spark's own replacement text).
REDACTED = "*********(redacted)"


def is_secret_key(key: str) -> bool:
    """Whether values under ``key`` are secret.

    >>> is_secret_key("fs.s3a.secret.key"), is_secret_key("AWS_SESSION_TOKEN"), is_secret_key("write.compression")
    (True, True, False)
    """
    return bool(SECRET_KEY.search(str(key)))


def redact_value(key: str, value: Any) -> Any:
    """``value``, or :data:`REDACTED` when ``key`` is secret (see :func:`is_secret_key`)."""
    return REDACTED if is_secret_key(key) else value


def redact_mapping(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a ``key: value`` mapping (Spark conf, environment) with secret values redacted.

    >>> redact_mapping({"spark.hadoop.fs.s3a.secret.key": "s", "spark.sql.shuffle.partitions": "8"})
    {'spark.hadoop.fs.s3a.secret.key': '*********(redacted)', 'spark.sql.shuffle.partitions': '8'}
    """
    return {k: redact_value(k, v) for k, v in conf.items()}


def redact_arg(arg: str) -> str:
    """One argument with the value of a secret ``KEY=VALUE`` (or ``--option=VALUE``) redacted.

    >>> redact_arg("fs.s3a.secret.key=abc"), redact_arg("--token=abc"), redact_arg("--date=2020-01-02")
    ('fs.s3a.secret.key=*********(redacted)', '--token=*********(redacted)', '--date=2020-01-02')
    """
    key, sep, value = str(arg).partition("=")
    if not sep:
        return key
    if is_secret_key(key):
        return f"{key}={REDACTED}"
    if key.startswith("-"):  # --set=KEY=VALUE, --conf=KEY=VALUE
        return f"{key}={redact_arg(value)}"
    return str(arg)


def redact_args(args: Sequence[str]) -> list[str]:
    """A command line with every secret value redacted (the module docstring says which values are secret).

    Parameters
    ----------
    args
        The arguments, as ``sys.argv[1:]`` or an EMR step's ``Args`` hold them.

    Returns
    -------
    list[str]
        The same arguments, same length and order, secret values replaced by :data:`REDACTED`.

    Examples
    --------
    >>> redact_args(["spark-submit", "--conf", "spark.hadoop.fs.s3a.access.key=AKIA", "--password", "pw", "x.py"])
    ['spark-submit', '--conf', 'spark.hadoop.fs.s3a.access.key=*********(redacted)', '--password', \
'*********(redacted)', 'x.py']
    """
    out: list[str] = []
    secret_next = False
    for arg in args:
        arg = str(arg)
        if secret_next and not arg.startswith("-"):
            out.append(REDACTED)
            secret_next = False
            continue
        secret_next = arg.startswith("-") and "=" not in arg and is_secret_key(arg.lstrip("-"))
        out.append(redact_arg(arg))
    return out


def redact_text(text: str, args: Sequence[str]) -> str:
    """``text`` (a message, a step name) with every secret value of ``args`` replaced by :data:`REDACTED`.

    For text built from a command line, such as an error message that quotes an argument.

    >>> redact_text("--set 'x.secret=abc': x is not a mapping", ["--set", "x.secret=abc"])
    "--set 'x.secret=*********(redacted)': x is not a mapping"
    """
    for original, redacted in zip(args, redact_args(args)):
        if original != redacted:
            secret = original.partition("=")[2] if "=" in redacted else original
            if secret:
                text = text.replace(secret, REDACTED)
    return text
