"""Hide secret values before lakelib writes or prints them (run reports, ``lake_runs``, logs, EMR step and job run
names, the requests ``lake submit --dry-run`` prints).

One rule, Spark's own: a value is secret when its *key* or the *value itself* matches :data:`SECRET_KEY` (the
default of Spark's ``spark.redaction.regex``, ``(?i)secret|password|token|access[.]?key``), and it becomes
:data:`REDACTED`, the text Spark shows in its UI. A value that matches because it holds ``name=value`` parts with a
secret name (a JDBC URL's ``password=...``, a URL's ``?token=...``) loses those parts' values only; any other
matching value (``conf/token.yaml``) is hidden whole, as Spark hides it. One more than Spark: the password of a URL
(``postgresql://etl:PASSWORD@db/lake``, ``s3a://KEY:SECRET@bucket``) is hidden wherever it appears, whatever the key.

In a command line (:func:`redact_args`) the key of a value is:

- the part before the first ``=`` of ``KEY=VALUE`` (``--set spark.spark.hadoop.fs.s3a.secret.key=abc``,
  ``--conf spark.hadoop.fs.s3a.access.key=AKIA...``, ``Password=x``);
- the option of ``--option=VALUE``, or the ``KEY`` of ``--option=KEY=VALUE``;
- the option before a separate value (``--aws-secret-access-key VALUE``): an option whose name matches
  redacts the next argument, unless that argument is itself an option (``--name``; ``-VALUE`` is a value).

:func:`redact` applies the rule to anything lakelib prints or stores (a request, a report, a row); text that
quotes arguments (an error line) goes through :func:`redact_text`.

>>> redact_args(["--set", "spark.spark.hadoop.fs.s3a.secret.key=abc", "--date", "2020-01-02"])
['--set', 'spark.spark.hadoop.fs.s3a.secret.key=*********(redacted)', '--date', '2020-01-02']
>>> redact_args(["--url", "jdbc:postgresql://db/lake?user=etl&password=pw", "--password", "-pw"])
['--url', 'jdbc:postgresql://db/lake?user=etl&password=*********(redacted)', '--password', '*********(redacted)']
>>> redact_value("spark.hadoop.fs.s3a.access.key", "AKIA123")
'*********(redacted)'
"""
from __future__ import annotations

import logging
import re
from typing import Any, Mapping, Sequence

#: Keys (and values) that are secret: Spark's default ``spark.redaction.regex``.
SECRET_KEY = re.compile(r"(?i)secret|password|token|access[.]?key")

#: What a secret value becomes (Spark's own replacement text).
REDACTED = "*********(redacted)"

#: A ``name=value`` part inside a value (a URL's query, a JDBC URL's properties) whose name is secret.
_SECRET_PART = re.compile(r"(?i)([\w.-]*(?:secret|password|token|access[.]?key)[\w.-]*)=([^&;,\s]+)")
#: A URL's ``user:password@`` (RFC 3986's userinfo: no ``/``, ``?``, ``#`` or ``@`` inside), the password in group 2.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/\s:@?#]*):([^/\s@?#]+)@")
#: ``KEY=VALUE`` or ``--option=VALUE`` as one argument (a URL's ``?a=b`` is not one: its "key" has ``:/?``).
_KEY_VALUE = re.compile(r"(--?[\w.-]+|[\w.-]+)=(.*)", re.DOTALL)
#: An option name: never a secret itself, and never the value of the option before it.
_OPTION = re.compile(r"--[A-Za-z][\w.-]*")


def is_secret_key(key: str) -> bool:
    """Whether values under ``key`` are secret.

    >>> is_secret_key("fs.s3a.secret.key"), is_secret_key("AWS_SESSION_TOKEN"), is_secret_key("write.compression")
    (True, True, False)
    """
    return bool(SECRET_KEY.search(str(key)))


def redact_value(key: str, value: Any) -> Any:
    """``value`` with the rule applied: :data:`REDACTED` when ``key`` is secret, else its secret parts hidden."""
    if is_secret_key(key):
        return REDACTED
    return _redact_text_value(value) if isinstance(value, str) else value


def _redact_text_value(value: str) -> str:
    """A value under a key that is not secret: its URLs' passwords hidden, then its secret ``name=value`` parts, or
    all of it when it matches without such a part.

    >>> _redact_text_value("postgresql://etl:pw@db:5432/lake"), _redact_text_value("http://db:5432/a@b")
    ('postgresql://etl:*********(redacted)@db:5432/lake', 'http://db:5432/a@b')
    """
    value = hide_url_passwords(value)
    if not SECRET_KEY.search(value) or value == REDACTED:
        return value
    hidden, count = _SECRET_PART.subn(lambda m: f"{m.group(1)}={REDACTED}", value)
    return hidden if count else REDACTED


def hide_url_passwords(text: str) -> str:
    """``text`` with the password of every URL in it (``scheme://user:PASSWORD@host``) replaced by :data:`REDACTED`.

    >>> hide_url_passwords("reading s3a://AKIAEXAMPLE:abc@bucket/raw and https://host:8443/a@b")
    'reading s3a://AKIAEXAMPLE:*********(redacted)@bucket/raw and https://host:8443/a@b'
    """
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@" if m.group(2) != REDACTED else m.group(0), text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose lines never show a URL's password (:func:`hide_url_passwords`): a path from the config
    may carry one (``s3a://KEY:SECRET@bucket``)."""

    def format(self, record: logging.LogRecord) -> str:
        return hide_url_passwords(super().format(record))


def redact_mapping(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a ``key: value`` mapping (Spark conf, environment) with secret values redacted.

    >>> redact_mapping({"spark.hadoop.fs.s3a.secret.key": "s", "spark.sql.shuffle.partitions": "8"})
    {'spark.hadoop.fs.s3a.secret.key': '*********(redacted)', 'spark.sql.shuffle.partitions': '8'}
    """
    return {k: redact_value(k, v) for k, v in conf.items()}


def redact_arg(arg: str) -> str:
    """One argument with the rule applied (``KEY=VALUE``, ``--option=VALUE`` or a value alone).

    >>> redact_arg("fs.s3a.secret.key=abc"), redact_arg("--token=abc"), redact_arg("--date=2020-01-02")
    ('fs.s3a.secret.key=*********(redacted)', '--token=*********(redacted)', '--date=2020-01-02')
    >>> redact_arg("https://api.example.com/v1?page=2&token=abc")
    'https://api.example.com/v1?page=2&token=*********(redacted)'
    """
    arg = str(arg)
    if _OPTION.fullmatch(arg):
        return arg
    pair = _KEY_VALUE.fullmatch(arg)
    if pair is None:
        return _redact_text_value(arg)
    key, value = pair.groups()
    if is_secret_key(key):
        return f"{key}={REDACTED}"
    return f"{key}={redact_arg(value) if key.startswith('-') else _redact_text_value(value)}"


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
    """
    out: list[str] = []
    secret_next = False
    for arg in map(str, args):
        option = _OPTION.fullmatch(arg) is not None
        if secret_next and not option:
            out.append(REDACTED)
        else:
            out.append(redact_arg(arg))
        secret_next = option and is_secret_key(arg)
    return out


def redact_words(text: str) -> str:
    """A line of white-space separated arguments (a step or job run name, ``sparkSubmitParameters``) through
    :func:`redact_args`, its spacing kept.

    >>> redact_words("--py-files s3://b/l.zip --conf spark.hadoop.fs.s3a.secret.key=abc")
    '--py-files s3://b/l.zip --conf spark.hadoop.fs.s3a.secret.key=*********(redacted)'
    """
    parts = re.split(r"(\s+)", text)
    words = redact_args(parts[0::2])
    parts[0::2] = words
    return "".join(parts)


def redact(value: Any, key: str | None = None) -> Any:
    """A copy of ``value`` (a request, a report, a row: mappings, lists, text) with the rule applied everywhere:
    a mapping's value under a secret key is :data:`REDACTED`, a list of text is a command line
    (:func:`redact_args`), other text a line of arguments (:func:`redact_words`).

    >>> redact({"name": "lakelib j --password pw", "Args": ["--set", "a.token=t"], "password": "pw", "n": 1})
    {'name': 'lakelib j --password *********(redacted)', 'Args': ['--set', 'a.token=*********(redacted)'], \
'password': '*********(redacted)', 'n': 1}
    """
    if key is not None and is_secret_key(key) and not isinstance(value, (Mapping, list, tuple)):
        return REDACTED if value is not None else None
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return redact_args(value)
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_words(value)
    return value


def secrets_in(args: Sequence[str]) -> list[str]:
    """The secret substrings of ``args`` (what :func:`redact_args` hides), longest first.

    >>> secrets_in(["--url", "h?user=a&password=pw;x", "--token", "t1"])
    ['pw', 't1']
    """
    found: set[str] = set()
    for original, hidden in zip(map(str, args), redact_args(args)):
        if original == hidden:
            continue
        pattern = "(.*?)".join(re.escape(p) for p in hidden.split(REDACTED))
        match = re.fullmatch(pattern, original, re.DOTALL)
        found.update(g for g in (match.groups() if match else (original,)) if g)
    return sorted(found, key=lambda s: (-len(s), s))


def redact_text(text: str, args: Sequence[str]) -> str:
    """``text`` (a message that quotes arguments) with every secret of ``args`` replaced by :data:`REDACTED`.

    >>> redact_text("--set 'x.secret=abc': x is not a mapping", ["--set", "x.secret=abc"])
    "--set 'x.secret=*********(redacted)': x is not a mapping"
    """
    for secret in secrets_in(args):
        text = text.replace(secret, REDACTED)
    return text
