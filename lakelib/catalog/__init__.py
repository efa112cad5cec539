"""Metastore backends: ``spark`` (the session's Hive metastore), ``glue`` (AWS Glue via boto3), ``none``.

Use :func:`open_catalog` to get the one the config names.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakelib.catalog.base import Catalog, NoCatalog, Partition, RegisterResult

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from lakelib.config import Config

__all__ = ["Catalog", "NoCatalog", "Partition", "RegisterResult", "open_catalog"]


def open_catalog(config: "Config", spark: "SparkSession | None" = None, *, glue_client: Any = None) -> Catalog:
    """The catalog backend ``catalog.kind`` names.

    Parameters
    ----------
    config
        The job config.
    spark
        The session (required for ``kind: spark``).
    glue_client
        An injected boto3 Glue client (``kind: glue``); built from ``catalog.glue`` when ``None``.
    """
    kind = config.catalog.kind
    if kind == "none":
        return NoCatalog(config.catalog.database)
    raise NotImplementedError(f"catalog.kind {kind} is being built")  # replaced by the catalog backends
