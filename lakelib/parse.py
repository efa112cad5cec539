"""Segment JSON lines to ``events`` rows: pure ``DataFrame -> DataFrame`` transforms, no I/O.

The input of :func:`parse_events` is one row per raw line with ``value`` (the line), ``file``, ``sourceid``,
``dt`` and ``pos`` (a number that grows with the line's position in its file). Its output has every column of the
``events`` table plus ``reason`` (``None`` for a good line, else the contract's reject reason) and ``raw`` (the
line, kept for rejected lines only). Blank lines are dropped: they are neither rows nor rejects.

How a line is judged, in the contract's order (the first that applies):

``invalid_json``
    Not one complete JSON value in valid UTF-8. Spark's JSON reader stops at the end of the first value and ignores
    what follows, so the line is parsed *inside* a wrapper array, ``[<line>,{"<end marker>":0}]``, whose end
    marker is a key drawn at random when the module is imported (no input can contain it): the line is complete
    only when the array has exactly two elements and the second holds the marker, so trailing text (two objects
    glued together, a stray brace or bracket, a forged marker) is refused, whatever it is. Single quotes, ``NaN``
    and unescaped control characters are not JSON and are refused. So is a line whose bytes are not valid UTF-8,
    or that escapes a lone UTF-16 surrogate (``"\ud800"``), which no UTF-8 text can hold: Spark would turn
    either into replacement characters and merge messages that differ (its bytes stay in ``raw_base64``).
    Jackson, Spark's parser, refuses objects nested more than 1000 levels deep: such a line is ``invalid_json``
    too, with a ``detail`` in its quarantine record saying so.
``not_an_object``
    Valid JSON, but an array, a string, a number, ``true``/``false`` or ``null``.
``missing_message_id``
    ``messageId`` absent, ``null`` or blank.
``invalid_type``
    ``type`` absent or not one of track, identify, page, screen, group, alias.
``invalid_timestamp``
    ``timestamp`` absent or not ISO-8601 (``2015-12-10T04:08:31.909Z``, offsets, any fraction, a date alone).

Every other field is taken as it comes: a number where a string is expected becomes its JSON text, an object
where a string is expected becomes its JSON text, a non-object where a map is expected becomes ``null``, an
unparseable ``sentAt`` becomes ``null``. Nothing but the five rules rejects a line. A key repeated in one object
resolves to its last value (as in Python's ``json`` and JavaScript's ``JSON.parse``), at the top level, inside the
maps (``properties``, ``context``, ``extras``...) and inside the nested objects whose JSON text the maps hold alike:
Spark's text of a nested object keeps every copy of a repeated key (``get_json_object`` and Athena's
``json_extract`` would read the first), so a line whose nested objects repeat a key is parsed without the earlier
copies (:mod:`lakelib.json_udfs`, whose one pass over the line also lists its top-level keys for ``extras``); its
``raw`` in the quarantine stays as it came.

One ``from_json`` per line does all of it: the message is parsed straight into a struct of the known fields (maps
stay maps), and Spark's partial results (``spark.sql.json.enablePartialResults``, on by default since Spark 3.4)
turn a field of the wrong kind into ``null`` instead of failing the line. :func:`judge_lines` is the same judge
with only the three judged fields in the struct: Spark then skips every other value without building it.
"""
from __future__ import annotations

import secrets
from functools import reduce
from typing import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakelib import json_udfs
from lakelib.errors import ConfigError
from lakelib.schema import EVENT_COLUMNS, EVENTS, MAP, MESSAGE_TYPES, TIMESTAMP

#: Strict JSON: no single quotes, no NaN/Infinity (Spark accepts both by default).
JSON_OPTIONS = {"allowSingleQuotes": "false", "allowNonNumericNumbers": "false", "mode": "PERMISSIVE"}

#: ISO-8601 as Segment sends it; the values themselves (month 13, Feb 30) are checked by the cast.
ISO_8601 = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|z|[+-]\d{2}(:?\d{2})?)?$"

#: The session setting the one-pass parse relies on (see the module's docstring).
PARTIAL_RESULTS = "spark.sql.json.enablePartialResults"

#: The wrapper's end marker: random, so that no input can supply it (see the module's docstring).
_EOL = f"lakelib_end_{secrets.token_hex(16)}"

#: A ``\\uXXXX`` escape of a UTF-16 surrogate that is not half of a pair (not after an escaped backslash).
_LONE_SURROGATE = (
    r"(?<!\\)(?:\\\\)*(?:\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})"
)

#: A number as Spark prints a parsed JSON number in a string column.
_PRINTED_NUMBER = r'^(-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?|"-?Infinity")$'

#: Jackson's nesting limit (``StreamReadConstraints``' default maximum depth, Spark 3.5 and 4.x).
MAX_DEPTH = 1000

#: The quarantine record's ``detail`` for a line nested deeper than :data:`MAX_DEPTH`.
TOO_DEEP = (f"nested more than {MAX_DEPTH} levels deep: Spark's JSON parser refuses it, whether or not it is "
            "otherwise valid JSON")
_STRING_MAP = T.MapType(T.StringType(), T.StringType())

#: Top-level Segment fields that have a column of their own; any other key goes to ``extras``.
KNOWN_FIELDS = tuple(c.field for c in EVENT_COLUMNS if c.field)

#: The fields the five rules look at.
JUDGED_FIELDS = ("messageId", "type", "timestamp")

#: The message as parsed: every known field, maps as maps (a nested value becomes its JSON text), the rest text.
_MESSAGE = T.StructType(
    [T.StructField(c.field, _STRING_MAP if c.type == MAP else T.StringType()) for c in EVENT_COLUMNS if c.field]
)
#: The narrow parse: the judged fields, and ``receivedAt`` for the dedup rule.
_JUDGED = T.StructType([T.StructField(field, T.StringType()) for field in JUDGED_FIELDS + ("receivedAt",)])
#: The fields that say who sent a message (what erasure's suppression looks at), and their columns.
ID_FIELDS = {"type": "type", "userId": "userid", "anonymousId": "anonymousid", "previousId": "previousid"}
_JUDGED_WITH_IDS = T.StructType([T.StructField(field, T.StringType()) for field in JUDGED_FIELDS + ("receivedAt",)
                                 + tuple(f for f in ID_FIELDS if f not in JUDGED_FIELDS)])

#: The timestamp fields (their columns keep microseconds: further fraction digits are cut, not rounded).
TIMESTAMP_FIELDS = tuple(c.field for c in EVENT_COLUMNS if c.field and c.type == TIMESTAMP)
#: :func:`parse_valid`'s column saying that a line has a timestamp with non-zero digits beyond the microsecond.
TIMESTAMPS_CUT = "timestamps_cut"
#: ISO-8601 text (:data:`ISO_8601`) whose fraction has a non-zero digit after the sixth (the fraction starts at 21).
_BEYOND_MICROS = r"^.{26}[0-9]*[1-9]"

#: The columns :func:`parse_events` adds to the events columns.
PARSE_COLUMNS = ("sourceid", "dt", "file", "pos", "reason", "raw", "raw_base64")


def parse_events(lines: DataFrame) -> DataFrame:
    """Judge and parse raw lines: events columns, plus ``reason`` and ``raw`` (see the module's docstring).

    Parameters
    ----------
    lines
        ``value`` string (one raw line), ``file`` string, ``sourceid`` string, ``dt`` string, ``pos`` long.

    Returns
    -------
    DataFrame
        ``sourceid, dt, file, pos, reason, raw, raw_base64`` and the events columns (all ``None`` for a rejected
        line).
    """
    judged = _judge(_last_key_text(lines), _MESSAGE, F.col("_text"))
    valid = F.col("reason").isNull()
    return _event_columns(judged, F.when(valid, F.col("_msg")), valid, PARSE_COLUMNS)


def parse_valid(lines: DataFrame) -> DataFrame:
    """The events columns of lines without judging them: :func:`parse_events` for lines the judge found valid.

    A line :func:`judge_lines` rejects gets whatever a lenient parse makes of it, so drop those lines (json_to_parquet
    drops them by ``pos``, with the losing copies); blank lines are dropped here, as in :func:`parse_events`. Skipping
    the judge (the wrapper, the UTF-8 check, the reject rules) makes the parse about a fifth cheaper.

    Parameters
    ----------
    lines
        As for :func:`parse_events`.

    Returns
    -------
    DataFrame
        ``sourceid, dt, pos``, the events columns and :data:`TIMESTAMPS_CUT` (:func:`cut_to_micros` of any
        timestamp field).
    """
    parsed = _last_key_text(_drop_blank(lines)).select(
        "sourceid", "dt", "pos", "value", "_keys", "_text", F.from_json(F.col("_text"), _MESSAGE, JSON_OPTIONS).alias("_msg")
    )
    utc = in_utc(lines)
    cut = reduce(lambda a, b: a | b, [cut_to_micros(F.col("_msg")[f], utc) for f in TIMESTAMP_FIELDS])
    return _event_columns(parsed, F.col("_msg"), F.lit(True), ("sourceid", "dt", "pos"), cut.alias(TIMESTAMPS_CUT))


def _event_columns(df: DataFrame, msg: Column, valid: Column, keep: Sequence[str], *more: Column) -> DataFrame:
    """``keep``, the events columns and ``more``, from ``msg`` (the parsed message) and ``value`` (the line);
    ``extras`` only where ``valid``; ``df`` has :func:`_last_key_text`'s columns."""
    utc = in_utc(df)
    columns = [_column_from(msg, c.field, c.type, utc).alias(c.name) for c in EVENT_COLUMNS if c.field]
    return df.select(*keep, *columns, _extras(valid).alias("extras"), *more)


def _last_key_text(lines: DataFrame) -> DataFrame:
    """``lines`` with ``_keys`` (:func:`lakelib.json_udfs.top_keys` of the line) and ``_text``: the line to parse,
    without the earlier copies of a key repeated inside a nested object when it has one, else the line itself."""
    json_udfs.register(lines.sparkSession)
    keyed = lines.withColumn("_keys", json_udfs.top_keys(F.col("value")))
    text = F.when(F.col("_keys.repeats"), json_udfs.last_key_wins_text(F.col("value"))).otherwise(F.col("value"))
    return keyed.withColumn("_text", text)


def judge_lines(lines: DataFrame, keep: Sequence[str] = (), ids: bool = False) -> DataFrame:
    """The judge of :func:`parse_events` alone, parsing only the judged fields and ``receivedAt`` (a much cheaper
    pass).

    Parameters
    ----------
    lines
        As for :func:`parse_events`.
    keep
        Other columns of ``lines`` to pass through (a file's sort index, say).
    ids
        Also parse who sent each message: ``type``, ``userid``, ``anonymousid``, ``previousid`` (as
        :func:`parse_events` has them).

    Returns
    -------
    DataFrame
        ``sourceid, dt, file, pos, reason, raw, raw_base64``, ``messageid`` and ``receivedat`` (both ``None`` for a
        rejected line, ``receivedat`` as :func:`parse_events` has it), then ``keep``, then the ``ids`` columns.
    """
    judged = _judge(lines, _JUDGED_WITH_IDS if ids else _JUDGED)
    valid = F.col("reason").isNull()
    message_id = F.when(valid, _message_id(F.col("_msg")))
    received = F.when(valid, _column_from(F.col("_msg"), "receivedAt", TIMESTAMP, in_utc(lines)))
    who = [F.when(valid, F.col("_msg")[f]).alias(c) for f, c in ID_FIELDS.items()] if ids else []
    return judged.select(*PARSE_COLUMNS, message_id.alias("messageid"), received.alias("receivedat"), *keep, *who)


def _judge(lines: DataFrame, message: T.StructType, text: Column | None = None) -> DataFrame:
    """Drop blank lines; add ``_msg`` (``text``, default the line, parsed into ``message``), ``reason``, ``raw`` and
    ``raw_base64`` (``reason``, ``raw`` and ``raw_base64`` from the line itself)."""
    if str(lines.sparkSession.conf.get(PARTIAL_RESULTS, "true")).lower() != "true":
        raise ConfigError(f"lakelib.parse needs {PARTIAL_RESULTS}=true (the default): a field of the wrong kind "
                          "would otherwise reject a whole line")
    json_udfs.register(lines.sparkSession)  # _message_id's
    end = T.StructField(_EOL, T.IntegerType())
    wrapper = T.ArrayType(T.StructType([*message.fields, end]))
    line = F.col("value") if text is None else text
    parsed = F.from_json(F.concat(F.lit("["), line, F.lit(f',{{"{_EOL}":0}}]')), wrapper, JSON_OPTIONS)
    lines = _drop_blank(lines).withColumn("_p", parsed)
    complete = (F.size("_p") == 2) & F.col("_p")[1][_EOL].isNotNull()
    msg = F.col("_p")[0]
    reason = (
        F.when(~_is_text(F.col("value")), F.lit("invalid_json"))
        .when(complete & msg.isNotNull(), _message_reason(msg, in_utc(lines)))
        .when(complete | _one_json_value(F.col("value")), F.lit("not_an_object"))
        .otherwise(F.lit("invalid_json"))
    )
    rejected = F.col("reason").isNotNull()
    return (
        lines.select("*", msg.alias("_msg"), reason.alias("reason"))
        .withColumn("raw", F.when(rejected, F.col("value")))
        .withColumn("raw_base64", F.when(rejected & ~_valid_utf8(F.col("value")), F.base64(F.col("value").cast("binary"))))
    )


def _drop_blank(lines: DataFrame) -> DataFrame:
    """``lines`` without its blank lines (neither rows nor rejects)."""
    blank = ~F.col("value").startswith("{") & F.col("value").rlike(r"^\s*$")  # the regex only when it can match
    return lines.where(~blank)


def _valid_utf8(value: Column) -> Column:
    """Whether a string column's bytes are valid UTF-8 (``spark.read.text`` keeps a line's bytes as they are)."""
    if hasattr(F, "is_valid_utf8"):  # Spark 4
        return F.is_valid_utf8(value)
    return value.cast("binary") == F.encode(value, "UTF-8")  # decoding replaces invalid bytes: the bytes change


def _is_text(value: Column) -> Column:
    """Valid UTF-8 without an escaped lone surrogate: text that Spark's strings hold without replacing anything."""
    maybe_surrogate = value.contains("\\u") & (value.contains("\\ud") | value.contains("\\uD"))  # one scan, mostly
    return _valid_utf8(value) & ~(maybe_surrogate & value.rlike(_LONE_SURROGATE))


def _one_json_value(value: Column) -> Column:
    """Whether a line that is not a JSON object is one complete JSON value (only asked of lines that are not one).

    Spark's parse of ``[<line>,...]`` into objects gives up on a line that is an array, string, number or boolean;
    ``{"v":<line>,"<end marker>":0}`` parses it as text, and its keys must be exactly ``v`` and the end marker.
    """
    wrapped = F.concat(F.lit('{"v":'), value, F.lit(f',"{_EOL}":0}}'))
    parsed = F.from_json(wrapped, T.StructType([T.StructField("v", T.StringType()), T.StructField(_EOL, T.IntegerType())]),
                         JSON_OPTIONS)
    return parsed[_EOL].isNotNull() & (F.size(F.json_object_keys(wrapped)) == 2)


def too_deep(raw: Column) -> Column:
    """Whether a line nests objects or arrays more than :data:`MAX_DEPTH` levels (strings aside), for ``detail``."""
    brackets = F.regexp_replace(F.regexp_replace(raw, r'"(?:[^"\\]|\\.)*"', ""), r"[^\[\]{}]", "")
    opened = F.length(F.regexp_replace(brackets, r"[\]}]", ""))
    steps = F.split(brackets, "")
    depth = F.aggregate(
        steps,
        F.struct(F.lit(0).alias("d"), F.lit(0).alias("m")),
        lambda acc, c: F.struct(
            (acc["d"] + F.when(c.isin("[", "{"), 1).otherwise(-1)).alias("d"),
            F.greatest(acc["m"], acc["d"] + F.when(c.isin("[", "{"), 1).otherwise(-1)).alias("m"),
        ),
    )
    return (opened > MAX_DEPTH) & (depth["m"] > MAX_DEPTH)


def _message_reason(msg: Column, utc_session: bool = False) -> Column:
    """The reject reason of a JSON object, or null when it is a valid message."""
    message_id = msg["messageId"]
    return (
        F.when(message_id.isNull() | (F.trim(message_id) == ""), F.lit("missing_message_id"))
        .when(~F.coalesce(msg["type"].isin(*MESSAGE_TYPES), F.lit(False)), F.lit("invalid_type"))
        .when(parse_timestamp(msg["timestamp"], utc_session).isNull(), F.lit("invalid_timestamp"))
    )


def _message_id(msg: Column) -> Column:
    """``messageId`` as text; a number as the client wrote it (``1e400``, ``0.1000000000000000001``).

    Spark prints a parsed number as a Java double would (``"Infinity"`` for both ``1e400`` and ``2e400``), which
    would merge different messages: when the parsed id looks like such a number, the digits are taken from the line
    (:func:`lakelib.json_udfs.top_level_number`: the top-level key only, never a nested ``messageId``).
    """
    parsed = msg["messageId"]
    as_written = json_udfs.top_level_number(F.col("value"), "messageId")
    return F.when(parsed.rlike(_PRINTED_NUMBER), F.coalesce(as_written, parsed)).otherwise(parsed)


def _extras(valid: Column) -> Column:
    """Top-level keys without a column of their own, with their JSON text; ``null`` when there are none.

    Listing a line's keys (``_keys``, :func:`_last_key_text`) is cheap next to parsing it; the line (``_text``) is
    parsed into a map only when one is unknown.
    """
    def unknown(key: Column) -> Column:
        return ~key.isin(*KNOWN_FIELDS)

    parsed = _number_text(last_key_wins(F.from_json(F.col("_text"), _STRING_MAP, JSON_OPTIONS)))
    extras = F.map_filter(parsed, lambda k, _v: unknown(k))
    return F.when(valid & F.exists(F.col("_keys.keys"), unknown), extras)


def last_key_wins(m: Column) -> Column:
    """A map parsed from JSON with each repeated key's last value only (Spark's JSON parse keeps every entry).

    Only a map that repeats a key is rebuilt; the others pass as they are.
    """
    keys = F.map_keys(m)
    later = lambda i: F.slice(keys, i + 2, F.size(keys) + 1)  # noqa: E731 - the keys after position i
    kept = F.filter(F.map_entries(m), lambda e, i: ~F.array_contains(later(i), e["key"]))
    return F.when(F.size(F.array_distinct(keys)) < F.size(keys), F.map_from_entries(kept)).otherwise(m)


def _number_text(m: Column) -> Column:
    """A map's values with a number too large for a double as ``Infinity``/``-Infinity``, text that casts to the
    double it became, instead of Spark's quoted ``"Infinity"``.

    A line that holds the quoted text as a string value (``"\\"Infinity\\""``) is left as it is: the two cannot
    be told apart there.
    """
    quoted = ('"Infinity"', '"-Infinity"')
    unquoted = F.transform_values(m, lambda _k, v: F.when(v.isin(*quoted), F.regexp_replace(v, '"', "")).otherwise(v))
    holds = [F.coalesce(F.array_contains(F.map_values(m), q), F.lit(False)) for q in quoted]  # no lambda: compiled
    overflow = (holds[0] | holds[1]) & ~F.col("value").contains('\\"Infinity\\"')
    return F.when(overflow, unquoted).otherwise(m)


def parse_timestamp(text: Column, utc_session: bool = False) -> Column:
    """ISO-8601 text to a UTC timestamp; ``null`` for anything else (never an error, ANSI mode or not).

    ``utc_session``: the session's time zone is UTC (every lakelib session's is), so that a ``Z`` suffix can be
    dropped before the cast (:func:`_iso_to_timestamp`); the result is the same.
    """
    return F.when(text.rlike(ISO_8601), _iso_to_timestamp(text, utc_session))


def _iso_to_timestamp(text: Column, utc_session: bool) -> Column:
    """``try_to_timestamp`` of text that matches :data:`ISO_8601`, faster for the usual ``...:ssZ`` in a UTC session.

    Spark looks a zone suffix up for every value (on Spark 3.5 that compiles two regexes per value: the largest
    single cost of the parse). In a UTC session, text without a zone is read as UTC, so the ``Z`` is dropped instead
    when the text has seconds (``yyyy-MM-ddTHH:mm:ss``, the only form Spark takes a ``Z`` after: it refuses
    ``2015-12-10Z``, ``...T04:08Z`` and a lowercase ``z``, and still does). Other offsets go through Spark's lookup.
    """
    if not utc_session:
        return F.try_to_timestamp(text)
    with_seconds = text.endswith("Z") & (text.substr(F.lit(17), F.lit(1)) == ":")
    stripped = text.substr(F.lit(1), F.length(text) - 1)
    return F.when(with_seconds, F.try_to_timestamp(stripped)).otherwise(F.try_to_timestamp(text))


def cut_to_micros(text: Column, utc_session: bool = False) -> Column:
    """Whether a timestamp's text has non-zero fraction digits beyond the sixth, which its column cuts (``false``
    for text that is not a timestamp).

    Two characters tell on nearly every line (the 20th is the fraction's dot, the 27th a digit); only then do a
    regex and the cast look further: the check stays cheap on the write pass.
    """
    maybe = (text.substr(F.lit(20), F.lit(1)) == ".") & text.substr(F.lit(27), F.lit(1)).between("0", "9")
    cut = text.rlike(_BEYOND_MICROS) & parse_timestamp(text, utc_session).isNotNull()
    return F.coalesce(F.when(maybe, cut), F.lit(False))


def in_utc(df: DataFrame) -> bool:
    """Whether ``df``'s session reads and writes timestamps in UTC (``spark.sql.session.timeZone``)."""
    zone = str(df.sparkSession.conf.get("spark.sql.session.timeZone", "")).strip()
    return zone.upper() in ("UTC", "Z", "GMT", "ETC/UTC", "+00:00")


def _column_from(msg: Column, field: str, hive_type: str, utc_session: bool = False) -> Column:
    """One events column from the parsed message (strings and maps as parsed; timestamps converted)."""
    value = _message_id(msg) if field == "messageId" else msg[field]
    if hive_type == MAP:
        return _number_text(last_key_wins(value))
    if hive_type != TIMESTAMP:
        return value
    # ``timestamp`` was checked by the judge; any other timestamp field still has to look like ISO-8601.
    if field == "timestamp":
        return _iso_to_timestamp(value, utc_session)
    return parse_timestamp(value, utc_session)


def dedupe_by_message_id(events: DataFrame) -> DataFrame:
    """Keep one row per ``messageId`` per source and received day: the earliest ``receivedat``.

    A missing ``receivedat`` sorts last; ties go to the file whose name sorts first, then the earlier line
    (:func:`losing_copies` says which rows lose).

    Parameters
    ----------
    events
        Valid rows of :func:`parse_events` (``reason`` null).
    """
    keys = ["sourceid", "dt", "file", "pos", "messageid"]
    return events.join(losing_copies(events).select(*keys), keys, "left_anti")


def losing_copies(valid: DataFrame, file_order: str = "file") -> DataFrame:
    """The rows that are not the kept copy of their ``messageId`` in their source and received day.

    The kept copy has the earliest ``receivedat`` (a missing one sorts last), then the first ``file_order``, then
    the lowest ``pos``. Meant for narrow rows (:func:`judge_lines`): the ranking shuffles every row it is given.

    Parameters
    ----------
    valid
        ``sourceid``, ``dt``, ``messageid``, ``receivedat``, ``pos`` and ``file_order`` of valid lines.
    file_order
        The column that orders files: ``file`` itself, or any column that sorts the same way within a day (an
        index into the sorted listing is a smaller sort key).

    Returns
    -------
    DataFrame
        The losing rows, with the columns of ``valid``.
    """
    order = Window.partitionBy("sourceid", "dt", "messageid").orderBy(
        F.col("receivedat").asc_nulls_last(), F.col(file_order).asc(), F.col("pos").asc()
    )
    return valid.withColumn("_rank", F.row_number().over(order)).where(F.col("_rank") > 1).drop("_rank")


def to_events_table(events: DataFrame) -> DataFrame:
    """The ``events`` table's columns, in order, then its partition keys."""
    return events.select(*EVENTS.all_names)
