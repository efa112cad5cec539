"""``lake ddl TABLE``: print the Athena ``CREATE EXTERNAL TABLE`` of a lake table.

For people who manage the catalog by hand or want to see what lakelib registers; jobs never need it (they
register their tables themselves). ``--projection`` adds Athena partition-projection properties (see
``docs/catalog.md`` for the trade-off).

.. code-block:: console

    $ lake ddl events --location s3://my-bucket/lake/tables/events --projection
"""
from __future__ import annotations

import argparse
import os
import sys

from lakelib.catalog.glue_payloads import projection_parameters
from lakelib.cli import command, config_of, default_config
from lakelib.paths import canonical_location, table_dir
from lakelib.schema import TABLES, Table, create_table_ddl
from lakelib.typed import resolve_table

#: The location printed when neither ``--location`` nor ``--config`` says where the table is.
PLACEHOLDER_ROOT = "s3://your-bucket/tables"

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
    return create_table_ddl(table, location, database,
                            properties=projection_parameters(table, location) if projection else None)


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
                        help="the lake's config to take the location and database from (default: $LAKELIB_CONFIG, "
                             "else conf/local.yaml when it exists, else a placeholder location)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


@command("ddl", "print the Athena CREATE EXTERNAL TABLE of a lake table", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """Print the DDL; exit 2 for an unknown table or a wrong config."""
    database, root, configured = "segment_logs", PLACEHOLDER_ROOT, False
    if args.config or os.environ.get("LAKELIB_CONFIG") or os.path.isfile(default_config()):
        config = config_of(args)
        database, root, configured = config.catalog.database, config.lake.tables, True
    table = resolve_table(args.table.lower(), root if configured else None)
    location = args.location or table_dir(root, table.name)
    if location.startswith(PLACEHOLDER_ROOT):
        sys.stderr.write(f"lake ddl: warning: {location} is a placeholder: give --location or --config\n")
    elif location.startswith("file:"):
        sys.stderr.write(f"lake ddl: note: {location} is a local folder; Athena reads only s3:// locations\n")
    print(athena_ddl(table, location, args.database or database, projection=args.projection) + ";")
    return 0
