"""Metastore backends: ``spark`` (the session's Hive metastore), ``glue`` (AWS Glue via boto3), ``none``.

Use :func:`open_catalog` to get the one the config names.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakelib.catalog.base import Catalog, NoCatalog, Partition, RegisterResult
from lakelib.errors import CatalogError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from lakelib.config import Config

__all__ = ["Catalog", "NoCatalog", "Partition", "RegisterResult", "holds_locations", "open_catalog"]


def holds_locations(config: Config) -> bool:
    """Whether the backend ``catalog.kind`` names says where partitions are (``none`` does not), without opening it.

    >>> from lakelib.config import parse_config
    >>> holds_locations(parse_config({"lake": {"raw": "s3://lake/raw", "tables": "s3://lake/t",
    ...                   "quarantine": "s3://lake/q", "reports": "s3://lake/r"}, "catalog": {"kind": "none"}}))
    False
    """
    return config.catalog.kind != NoCatalog.kind


def open_catalog(config: Config, spark: SparkSession | None = None, *, glue_client: Any = None) -> Catalog:
    """The catalog backend ``catalog.kind`` names.

    Parameters
    ----------
    config
        The job config.
    spark
        The session (required for ``kind: spark``).
    glue_client
        An injected boto3 Glue client (``kind: glue``); built from ``catalog.glue`` when ``None``.

    Returns
    -------
    Catalog
        :class:`~lakelib.catalog.spark_catalog.SparkCatalog`, :class:`~lakelib.catalog.glue_catalog.GlueCatalog`
        or :class:`NoCatalog`.

    Raises
    ------
    CatalogError
        ``kind: spark`` without a session.
    ConfigError
        An unknown ``kind`` (a config that skipped validation).

    Examples
    --------
    >>> from lakelib.config import parse_config
    >>> cfg = parse_config({"lake": {"raw": "s3://lake/raw", "tables": "s3://lake/t", "quarantine": "s3://lake/q",
    ...                              "reports": "s3://lake/r"}, "catalog": {"kind": "none"}})
    >>> open_catalog(cfg).kind
    'none'
    """
    settings = config.catalog
    if settings.kind == "none":
        return NoCatalog(settings.database)
    if settings.kind == "spark":
        if spark is None:
            raise CatalogError("catalog.kind spark needs the job's SparkSession (open_catalog(config, spark))")
        from lakelib.catalog.spark_catalog import SparkCatalog

        return SparkCatalog(spark, settings.database)
    if settings.kind == "glue":
        from lakelib.catalog.glue_catalog import GlueCatalog
        from lakelib.catalog.glue_catalog import glue_client as make_glue_client

        glue = settings.glue
        client = glue_client if glue_client is not None else make_glue_client(glue.region, glue.endpoint_url)
        return GlueCatalog(
            client, settings.database, catalog_id=glue.catalog_id, projection=glue.partition_projection
        )
    raise ConfigError(f"catalog.kind: {settings.kind!r} is not one of spark, glue, none")
