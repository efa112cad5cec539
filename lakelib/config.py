"""Job configuration: load the YAML, apply ``--set`` overrides, validate, normalise URIs.

Everything here runs before Spark starts, so a wrong config costs nothing but one line:

>>> load_config("conf/local.yaml").lake.tables        # doctest: +SKIP
'file:///home/me/lakelib/lake/tables'

The accepted keys are exactly those of :data:`SPEC`; an unknown key, a missing required key, a value of the
wrong type, a URI lakelib cannot use, or an output root inside ``lake.raw`` raises :class:`ConfigError`
whose message names the key.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from lakelib.errors import ConfigError
from lakelib.paths import S3_URI, canonical_location, is_within

REQUIRED = object()
"""Marker for a key with no default."""

CATALOG_KINDS = ("spark", "glue", "none")
COMPRESSIONS = ("snappy", "gzip", "zstd", "lz4", "uncompressed", "none")

#: Every key the config accepts: a nested mapping of key -> (type, default). ``dict`` leaves are free-form.
SPEC: dict[str, Any] = {
    "lake": {
        "raw": (str, REQUIRED),
        "tables": (str, REQUIRED),
        "quarantine": (str, REQUIRED),
        "reports": (str, REQUIRED),
    },
    "sources": (list, []),
    "catalog": {
        "kind": (str, "spark"),
        "database": (str, "segment_logs"),
        "metastore": (str, None),
        "glue": {
            "region": (str, None),
            "endpoint_url": (str, None),
            "catalog_id": (str, None),
            "partition_projection": (bool, False),
        },
    },
    "write": {
        "target_file_mb": (int, 256),
        "compression": (str, "snappy"),
    },
    "publish": {
        "retention_hours": ((int, float), None),
    },
    "compaction": {
        "retention_hours": ((int, float), None),
    },
    "dedup": {
        "window_days": (int, 1),
    },
    "forget": {
        "retention_hours": ((int, float), 24),
    },
    "submit": {
        "mode": (str, None),
        "artifacts": (str, None),
        "cluster_id": (str, None),
        "application_id": (str, None),
        "execution_role_arn": (str, None),
    },
    "spark": (dict, {}),
}
#: Where remote runs go (``submit.mode``).
SUBMIT_MODES = ("emr", "serverless")
#: The ``submit:`` keys each mode takes, as ``lake submit``'s options (``cluster_id`` is ``--cluster-id``).
SUBMIT_KEYS = {"emr": ("artifacts", "cluster_id", "execution_role_arn"),
               "serverless": ("artifacts", "application_id", "execution_role_arn")}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$")
_DATABASE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class LakeRoots:
    """The four roots of the lake, as normalised URIs without a trailing slash."""

    raw: str
    tables: str
    quarantine: str
    reports: str


@dataclass(frozen=True)
class GlueSettings:
    """Where the AWS Glue Data Catalog is (used when ``catalog.kind`` is ``glue``)."""

    region: str | None = None
    endpoint_url: str | None = None
    catalog_id: str | None = None
    partition_projection: bool = False


@dataclass(frozen=True)
class CatalogSettings:
    """Which metastore the jobs register their tables in."""

    kind: str = "spark"
    database: str = "segment_logs"
    metastore: str | None = None
    glue: GlueSettings = field(default_factory=GlueSettings)


@dataclass(frozen=True)
class WriteSettings:
    """How Parquet is written."""

    target_file_mb: int = 256
    compression: str = "snappy"

    @property
    def codec(self) -> str:
        """The codec name Spark's writers take: ``none`` is ``uncompressed``.

        >>> WriteSettings(compression="none").codec, WriteSettings().codec
        ('uncompressed', 'snappy')
        """
        return "uncompressed" if self.compression == "none" else self.compression


@dataclass(frozen=True)
class PublishSettings:
    """The lake's retention: how long a superseded version of a partition is kept so running queries can finish
    (``publish.retention_hours``; ``compaction.retention_hours`` is its older name)."""

    retention_hours: float = 6


@dataclass(frozen=True)
class ForgetSettings:
    """Erasure (``forget_users``): how long the versions that still hold erased people are kept before they are
    deleted (``forget.retention_hours``; 0 deletes them at once)."""

    retention_hours: float = 24


@dataclass(frozen=True)
class DedupSettings:
    """How far back json_to_parquet looks for a messageId: this received day and the ``window_days - 1`` before."""

    window_days: int = 1


@dataclass(frozen=True)
class SubmitSettings:
    """Where ``lake schedule`` and ``lake backfill`` send their runs when their options do not say (``submit:``):
    the mode, the S3 prefix the packaged jobs are uploaded under, the cluster or the Serverless application and role.
    """

    mode: str | None = None
    artifacts: str | None = None
    cluster_id: str | None = None
    application_id: str | None = None
    execution_role_arn: str | None = None

    def options(self, mode: str, given: Sequence[str] = ()) -> list[str]:
        """The ``lake submit emr|serverless`` options these settings give that ``given`` does not.

        >>> SubmitSettings(artifacts="s3://b/p", cluster_id="j-1").options("emr", ["--cluster-id", "j-2"])
        ['--artifacts', 's3://b/p']
        """
        out: list[str] = []
        for key in SUBMIT_KEYS[mode]:
            option = "--" + key.replace("_", "-")
            value = getattr(self, key)
            if value and not any(g == option or g.startswith(option + "=") for g in given):
                out += [option, value]
        return out


@dataclass(frozen=True)
class Config:
    """A validated job configuration."""

    lake: LakeRoots
    sources: tuple[str, ...] = ()
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    write: WriteSettings = field(default_factory=WriteSettings)
    publish: PublishSettings = field(default_factory=PublishSettings)
    dedup: DedupSettings = field(default_factory=DedupSettings)
    forget: ForgetSettings = field(default_factory=ForgetSettings)
    submit: SubmitSettings = field(default_factory=SubmitSettings)
    spark: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None


def load_config(path: str | os.PathLike[str], overrides: list[str] | None = None) -> Config:
    """Read, override and validate a YAML config file.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        ``key.path=value`` strings (from ``--set``); the value is read as YAML (``8``, ``true``, ``[a, b]``).

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        The file is missing or not YAML, or any key is wrong; the message names the file or the key.
    """
    text = read_config_text(str(path))
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"config {path}: not valid YAML{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping of keys, not {type(raw).__name__}")
    for item in overrides or []:
        apply_override(raw, item)
    return parse_config(raw, path=str(path))


def read_config_text(path: str, s3_client: Any = None) -> str:
    """The text of a config file: a local path, or ``s3://``/``s3a://`` (read with boto3, as on an EMR node).

    Raises
    ------
    ConfigError
        The file cannot be read.
    """
    try:
        body = read_uri_bytes(path, s3_client)
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read it ({exc})") from None
    return _utf8(path, body)


def read_uri_bytes(uri: str, s3_client: Any = None) -> bytes:
    """The bytes of a small file named before Spark starts: a local path, ``file://``, or ``s3://``/``s3a://``
    (read with boto3, as on an EMR node).

    Raises
    ------
    OSError
        The file cannot be read; the message says why.
    """
    match = _SCHEME.match(uri)
    if match and match.group(1).lower() in ("s3", "s3a"):
        bucket, _, key = match.group(2).partition("/")
        try:
            if s3_client is None:
                import boto3

                s3_client = boto3.client("s3")
            return bytes(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception as exc:  # noqa: BLE001 - any failure to fetch is one line for the user
            raise OSError(str(exc)) from None
    if match and match.group(1).lower() == "file":
        uri = match.group(2)
    try:
        return Path(uri).read_bytes()
    except OSError as exc:
        raise OSError(exc.strerror or str(exc)) from None


def _utf8(path: str, body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"config {path}: not UTF-8 text (byte 0x{body[exc.start]:02x} on line {line}); save it as UTF-8"
        ) from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` in a raw config mapping, in place (``value`` parsed as YAML).

    Raises
    ------
    ConfigError
        ``item`` is not of the form ``key.path=value``.
    """
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key.path=value")
    parts = key.strip().split(".")
    spec: Any = SPEC
    for i, part in enumerate(parts[:-1]):  # below a free-form mapping (spark:), the rest is one dotted key
        spec = spec.get(part) if isinstance(spec, dict) else None
        if isinstance(spec, tuple) and spec[0] is dict:
            parts = parts[: i + 1] + [".".join(parts[i + 1:])]
            break
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item!r}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        node[parts[-1]] = value


def parse_config(raw: Mapping[str, Any], path: str | None = None, cwd: str | None = None) -> Config:
    """Validate a raw config mapping (already loaded from YAML) into a :class:`Config`.

    Parameters
    ----------
    raw
        The mapping as YAML gave it.
    path
        The file it came from, for messages.
    cwd
        Directory relative URIs are resolved against; the current directory by default.

    Raises
    ------
    ConfigError
        Naming the first wrong key.
    """
    values = _check(raw, SPEC, prefix="")
    lake = values["lake"]
    roots = LakeRoots(**{k: normalize_uri(v, f"lake.{k}", cwd) for k, v in lake.items()})
    for key in ("tables", "quarantine", "reports"):
        if is_within(getattr(roots, key), roots.raw):
            raise ConfigError(
                f"lake.{key}: {getattr(roots, key)} is inside lake.raw ({roots.raw}); "
                "lakelib never writes under the raw logs"
            )

    sources = values["sources"] or []
    for i, source in enumerate(sources):
        if not isinstance(source, str) or not source or "/" in source or "=" in source:
            raise ConfigError(f"sources[{i}]: {source!r} is not a source id (a folder name under lake.raw)")

    cat = values["catalog"]
    if cat["kind"] not in CATALOG_KINDS:
        raise ConfigError(f"catalog.kind: {cat['kind']!r} is not one of {', '.join(CATALOG_KINDS)}")
    if not _DATABASE.match(cat["database"]):
        raise ConfigError(f"catalog.database: {cat['database']!r} must be lower-case letters, digits and _")
    glue = GlueSettings(**cat["glue"])
    if cat["kind"] == "glue" and not glue.region:
        raise ConfigError("catalog.glue.region: required when catalog.kind is glue")
    metastore = normalize_uri(cat["metastore"], "catalog.metastore", cwd) if cat["metastore"] else None
    if metastore and not metastore.startswith("file://"):
        raise ConfigError("catalog.metastore: the embedded metastore must be a local file:// folder")
    catalog = CatalogSettings(kind=cat["kind"], database=cat["database"], metastore=metastore, glue=glue)

    write = values["write"]
    if write["target_file_mb"] <= 0:
        raise ConfigError(f"write.target_file_mb: must be a positive number of MB, not {write['target_file_mb']}")
    if write["compression"] not in COMPRESSIONS:
        raise ConfigError(f"write.compression: {write['compression']!r} is not one of {', '.join(COMPRESSIONS)}")
    retention = _retention(values)

    forget_hours = values["forget"]["retention_hours"]
    if not math.isfinite(forget_hours) or forget_hours < 0:
        raise ConfigError(f"forget.retention_hours: must be a finite number of hours, 0 or more, not {forget_hours}")

    window = values["dedup"]["window_days"]
    if window < 1:
        raise ConfigError(f"dedup.window_days: must be a whole number of days, 1 or more, not {window}")

    submit = SubmitSettings(**values["submit"])
    if submit.mode is not None and submit.mode not in SUBMIT_MODES:
        raise ConfigError(f"submit.mode: {submit.mode!r} is not one of {', '.join(SUBMIT_MODES)}")
    if submit.artifacts is not None and not S3_URI.match(submit.artifacts):
        raise ConfigError(f"submit.artifacts: {submit.artifacts!r} is not an s3:// URI (where the jobs are uploaded)")

    spark_conf = values["spark"] or {}
    for key, value in spark_conf.items():
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"spark.{key}: Spark conf values must be scalars, not {type(value).__name__}")

    return Config(
        lake=roots,
        sources=tuple(sources),
        catalog=catalog,
        write=WriteSettings(**write),
        publish=PublishSettings(retention_hours=retention),
        dedup=DedupSettings(window_days=window),
        forget=ForgetSettings(retention_hours=float(forget_hours)),
        submit=submit,
        spark={str(k): _spark_value(v) for k, v in spark_conf.items()},
        path=path,
    )


def _retention(values: Mapping[str, Any]) -> float:
    """``publish.retention_hours``, else its older name ``compaction.retention_hours``, else 6."""
    new, old = values["publish"]["retention_hours"], values["compaction"]["retention_hours"]
    if new is not None and old is not None and new != old:
        raise ConfigError(f"publish.retention_hours ({new}) and compaction.retention_hours ({old}, its older name) "
                          "differ: keep publish.retention_hours only")
    key = "publish.retention_hours" if new is not None or old is None else "compaction.retention_hours"
    retention = new if new is not None else old if old is not None else 6
    if not math.isfinite(retention) or retention < 0:
        raise ConfigError(f"{key}: must be a finite number of hours, 0 or more, not {retention}")
    return float(retention)


def normalize_uri(value: str, key: str, cwd: str | None = None) -> str:
    """Return ``value`` as a URI lakelib can hand to Spark: ``s3://``, ``s3a://`` or ``file:///abs``.

    A relative path is resolved against ``cwd`` (the current directory by default); an absolute path gets
    ``file://``. A trailing slash is dropped.

    Raises
    ------
    ConfigError
        Any other scheme, an S3 URI with no bucket, or a ``file://`` URI with a host.

    Examples
    --------
    >>> normalize_uri("s3://bucket/segment-logs/", "lake.raw")
    's3://bucket/segment-logs'
    >>> normalize_uri("lake/tables", "lake.tables", cwd="/home/me")
    'file:///home/me/lake/tables'
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: expected a URI (s3://, s3a://, file:///abs/path or a relative path)")
    value = value.strip()
    match = _SCHEME.match(value)
    if match is None:
        if "://" in value or ":" in value.split("/")[0]:
            raise ConfigError(f"{key}: {value!r} is not a URI lakelib can use")
        path = Path(value) if os.path.isabs(value) else Path(cwd or os.getcwd()) / value
        return "file://" + _clean_path(os.path.normpath(str(path)))
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme in ("s3", "s3a"):
        s3 = S3_URI.match(f"{scheme}://{rest}")
        if s3 is None:
            raise ConfigError(f"{key}: {value!r} has no valid S3 bucket name")
        return canonical_location(s3.group(0), s3a_is_s3=False)
    if scheme == "file":
        if not rest.startswith("/"):
            raise ConfigError(f"{key}: {value!r} must be file:///absolute/path (three slashes)")
        return "file://" + _clean_path(os.path.normpath(rest))
    raise ConfigError(f"{key}: scheme {scheme}:// is not supported (use s3://, s3a://, file:/// or a relative path)")


def _clean_path(path: str) -> str:
    return path if path == "/" else path.rstrip("/")


def _spark_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check(raw: Any, spec: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, not {type(raw).__name__}")
    for key in raw:
        if key not in spec:
            known = ", ".join(sorted(spec))
            raise ConfigError(f"{prefix}{key}: unknown key (known here: {known})")
    out: dict[str, Any] = {}
    for key, rule in spec.items():
        name = f"{prefix}{key}"
        if isinstance(rule, dict):
            out[key] = _check(raw.get(key), rule, prefix=f"{name}.")
            continue
        kind, default = rule
        if key not in raw or raw[key] is None:
            if default is REQUIRED:
                raise ConfigError(f"{name}: missing (required)")
            out[key] = _fresh(default)
            continue
        value = raw[key]
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            expected = getattr(kind, "__name__", None) or " or ".join(k.__name__ for k in kind)
            raise ConfigError(f"{name}: expected {expected}, got {type(value).__name__} {value!r}")
        out[key] = value
    return out


def _fresh(default: Any) -> Any:
    return type(default)(default) if isinstance(default, (list, dict)) else default
