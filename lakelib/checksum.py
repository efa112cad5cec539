"""Order-independent checksums of a DataFrame: what a rewrite must keep, row for row.

Used by the publish protocol (:mod:`lakelib.publish`) to verify a new version when the writer asks for it
(compaction, erasure): same row count, and the same sums of two per-row hashes over every column.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import Column, DataFrame


@dataclass(frozen=True)
class Checksum:
    """Row count and two order-independent sums of per-row hashes over every column."""

    rows: int
    xxhash_sum: str
    murmur_sum: str


def _canonical(name: str, data_type) -> Column:
    """A hashable, order-stable form of a column (maps as their entries sorted by key)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    col = F.col(f"`{name}`")
    if isinstance(data_type, T.MapType):
        return F.array_sort(F.map_entries(col))
    if isinstance(data_type, (T.StructType, T.ArrayType)) and "map<" in data_type.simpleString():
        return F.to_json(col)
    return col


def row_hashes(df: DataFrame) -> DataFrame:
    """One row per input row: ``h64`` (xxhash64) and ``h32`` (murmur3) over every column.

    Each column is preceded by its null flag, so a value moved from one column to a null neighbour changes the
    hash (Spark's hashes skip nulls).
    """
    return df.select(*_hashes(df))


def _hashes(df: DataFrame, skip: Sequence[str] = ()) -> list[Column]:
    """``h64`` and ``h32`` over every column of ``df`` but ``skip`` (see :func:`row_hashes`)."""
    from pyspark.sql import functions as F

    parts = []
    for field_ in df.schema.fields:
        if field_.name not in skip:
            parts += [F.col(f"`{field_.name}`").isNull(), _canonical(field_.name, field_.dataType)]
    if not parts:
        parts = [F.lit(0)]
    return [F.xxhash64(*parts).alias("h64"), F.hash(*parts).alias("h32")]


def checksum(df: DataFrame) -> Checksum:
    """Count and checksum of a DataFrame in one Spark job; equal for the same rows in any order and split.

    A changed row changes a hash; a doubled row (even with another one missing) changes the sums.
    """
    from pyspark.sql import functions as F

    row = (
        row_hashes(df)
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.coalesce(F.sum(F.col("h64").cast("decimal(38,0)")), F.lit(0).cast("decimal(38,0)")).alias("s64"),
            F.coalesce(F.sum(F.col("h32").cast("decimal(38,0)")), F.lit(0).cast("decimal(38,0)")).alias("s32"),
        )
        .collect()[0]
    )
    return Checksum(int(row["rows"]), str(row["s64"]), str(row["s32"]))


def checksums_by(df: DataFrame, keys: Sequence[str]) -> dict[tuple, Checksum]:
    """:func:`checksum` of each group of rows with the same ``keys`` (over the other columns), in one Spark job."""
    from pyspark.sql import functions as F

    zero = F.lit(0).cast("decimal(38,0)")
    grouped = df.select(*keys, *_hashes(df, skip=keys)).groupBy(*keys).agg(
        F.count(F.lit(1)).alias("rows"),
        F.coalesce(F.sum(F.col("h64").cast("decimal(38,0)")), zero).alias("s64"),
        F.coalesce(F.sum(F.col("h32").cast("decimal(38,0)")), zero).alias("s32"),
    )
    return {tuple(str(r[k]) for k in keys): Checksum(int(r["rows"]), str(r["s64"]), str(r["s32"]))
            for r in grouped.collect()}
