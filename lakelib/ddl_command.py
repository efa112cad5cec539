"""``lake ddl TABLE``: print the Athena ``CREATE EXTERNAL TABLE`` of a lake table.

For people who manage the catalog by hand or want to see what lakelib registers; jobs never need it (they
register their tables themselves). ``--projection`` adds Athena partition-projection properties (see
``docs/catalog.md`` for the trade-off).

.. code-block:: console

    $ lake ddl events --location s3://my-bucket/lake/tables/events --projection
"""
from __future__ import annotations

import argparse
import sys

from lakelib.catalog.glue_payloads import projection_parameters
from lakelib.cli import command
from lakelib.errors import UsageError
from lakelib.paths import canonical_location, table_dir
from lakelib.schema import TABLES, Table, create_table_ddl, get_table

#: The location printed when neither ``--location`` nor ``--config`` says where the table is.
PLACEHOLDER_ROOT = "s3://your-bucket/tables"

_BASE_PROPERTIES = "TBLPROPERTIES ('parquet.compression'='SNAPPY')"


def athena_ddl(table: Table, location: str, database: str = "segment_logs", projection: bool = False) -> str:
    """The Athena DDL of ``table`` at ``location`` (``s3a://`` written as ``s3://``, which Athena needs).

    Parameters
    ----------
    table
        A lake table (:data:`lakelib.schema.TABLES`).
    location
        The table's root folder.
    database
        The Glue database.
    projection
        Add partition-projection ``TBLPROPERTIES`` (Athena then computes partitions instead of reading them).

    Returns
    -------
    str
        One ``CREATE EXTERNAL TABLE IF NOT EXISTS`` statement, without a trailing semicolon.

    Examples
    --------
    >>> from lakelib.schema import MESSAGE_TYPE_COUNTS_YEARLY
    >>> ddl = athena_ddl(MESSAGE_TYPE_COUNTS_YEARLY, "s3a://b/t/message_type_counts_yearly", projection=True)
    >>> "LOCATION 's3://b/t/message_type_counts_yearly'" in ddl, "'projection.end_dt.type'='date'" in ddl
    (True, True)
    """
    location = canonical_location(location)
    ddl = create_table_ddl(table, location, database)
    if not projection:
        return ddl
    if not ddl.endswith(_BASE_PROPERTIES):  # pragma: no cover - schema.create_table_ddl changed its ending
        raise AssertionError("create_table_ddl no longer ends with its TBLPROPERTIES clause")
    props = {"parquet.compression": "SNAPPY", **projection_parameters(table, location)}
    lines = ",\n".join(f"  '{key}'='{value}'" for key, value in props.items())
    return ddl[: -len(_BASE_PROPERTIES)] + f"TBLPROPERTIES (\n{lines}\n)"


def resolve_table(name: str, tables_root: str | None) -> Table:
    """A fixed lake table, or a typed table (``event_tables``) as its registry under ``tables_root`` describes it.

    Raises
    ------
    UsageError
        Neither: the message lists the fixed tables and says where typed tables were looked for.
    """
    from lakelib.config import read_config_text
    from lakelib.errors import ConfigError
    from lakelib.typed import Registry, registry_uri

    try:
        return get_table(name)
    except KeyError as exc:
        known = str(exc.args[0])
    if tables_root is None:
        raise UsageError(f"{known}; a typed table (event_tables) needs --config to find its schema")
    uri = registry_uri(tables_root)
    try:
        registry = Registry.from_json(read_config_text(uri))
    except ConfigError:
        raise UsageError(f"{known}; no typed tables either (no {uri}: run event_tables first)") from None
    if name not in registry.tables:
        raise UsageError(f"{known}; no typed table {name!r} either in {uri}")
    return registry.tables[name].table()


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", metavar="TABLE",
                        help=f"one of: {', '.join(TABLES)}, or a typed table of event_tables (needs --config)")
    parser.add_argument("--projection", action="store_true",
                        help="add Athena partition-projection table properties")
    parser.add_argument("--location", metavar="URI",
                        help="the table's folder (default: <lake.tables>/<table> from --config, else a placeholder)")
    parser.add_argument("--database", metavar="NAME",
                        help="the Glue database (default: catalog.database from --config, else segment_logs)")
    parser.add_argument("--config", metavar="PATH",
                        help="a lakelib YAML config to take the location and database from")


@command("ddl", "print the Athena CREATE EXTERNAL TABLE of a lake table", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """Print the DDL; exit 2 for an unknown table or a wrong config."""
    database, root = "segment_logs", PLACEHOLDER_ROOT
    if args.config:
        from lakelib.config import load_config

        config = load_config(args.config)
        database, root = config.catalog.database, config.lake.tables
    table = resolve_table(args.table.lower(), root if args.config else None)
    location = args.location or table_dir(root, table.name)
    print(athena_ddl(table, location, args.database or database, projection=args.projection) + ";")
    if location.startswith("file:"):
        sys.stderr.write(f"lake ddl: note: {location} is a local folder; Athena reads only s3:// locations\n")
    return 0
