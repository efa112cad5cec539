"""JSON work that Spark's built-in functions cannot do at the conversion's speed: two UDFs in the JVM.

Their source is ``java/lakelib/json/``; ``make jar`` builds it into ``lakelib/resources/lakelib-json.jar`` (Java 8
bytecode, one jar for Spark 3.5 and 4.x), which ships inside the package and the ``--py-files`` zip, so no
``--jars`` option is needed anywhere: :func:`register` adds the jar to the session when a job first parses.

- :func:`top_keys`: a JSON object's top-level keys (Spark's ``json_object_keys``) and whether an object nested
  below the top level repeats a key, in one pass over the tokens: cheaper than ``json_object_keys`` alone.
- :func:`last_key_wins_text`: the same JSON text without the earlier copies of each repeated key, at any depth.
- :func:`top_level_number`: the number an object holds under a top-level key, as written (Spark prints a parsed
  number as a double would: ``1e400`` and ``2e400`` both become ``Infinity``).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession

log = logging.getLogger(__name__)

#: The jar in ``lakelib/resources``.
JAR = "lakelib-json.jar"
#: The SQL names the UDFs are registered under, their classes and return types.
TOP_KEYS = "lakelib_top_keys"
LAST_KEY_WINS = "lakelib_last_key_wins"
TOP_LEVEL_NUMBER = "lakelib_top_level_number"
_CLASSES = {TOP_KEYS: "lakelib.json.TopKeys", LAST_KEY_WINS: "lakelib.json.LastKeyWins",
            TOP_LEVEL_NUMBER: "lakelib.json.TopLevelNumber"}


def jar_path() -> str:
    """The jar as a file Spark can add: in place for an installed package or a checkout; else (inside the
    ``--py-files`` zip, or under a folder whose name Spark would mangle: a space, a quote...) copied once per process
    into a temporary folder that lives as long as the process (Spark serves it to the executors from there)."""
    packaged = resources.files("lakelib").joinpath("resources").joinpath(JAR)
    if isinstance(packaged, os.PathLike) and os.path.isfile(packaged) and _PLAIN_PATH.match(os.fspath(packaged)):
        return os.fspath(packaged)
    global _copied
    if _copied is None:
        folder = tempfile.mkdtemp(prefix="lakelib-jar-")
        with packaged.open("rb") as src, open(os.path.join(folder, JAR), "wb") as dst:
            shutil.copyfileobj(src, dst)
        _copied = os.path.join(folder, JAR)
    return _copied


#: A path Spark's ``ADD JAR`` takes as it is (Hadoop's ``Path`` encodes other characters a second time).
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9/._+-]+$")
_copied: str | None = None


def register(spark: SparkSession) -> None:
    """Make this module's UDFs usable in ``spark`` (the jar is added once per session; registering is cheap).

    The jar is added as ``ADD JAR`` adds one (the executors fetch it) and the classes are loaded through the session's
    jar class loader: ``spark-submit`` has started the driver's JVM before lakelib runs, so the jar is not on its class
    path, and ``registerJavaFunction`` looks there on Spark 3.5.
    """
    jsession = spark._jsparkSession  # noqa: SLF001 - the JVM session: loading a class from the added jar
    loader = jsession.sharedState().jarClassLoader()
    if not any(str(url).endswith("/" + JAR) for url in loader.getURLs()):
        path = jar_path()
        log.debug("adding %s to the session", path)
        jsession.sessionState().resourceLoader().addJar(path)  # what ADD JAR does, without SQL quoting
    from pyspark.sql import types as T

    returns = {
        TOP_KEYS: T.StructType([T.StructField("keys", T.ArrayType(T.StringType())),
                                T.StructField("repeats", T.BooleanType())]),
        LAST_KEY_WINS: T.StringType(),
        TOP_LEVEL_NUMBER: T.StringType(),
    }
    for name, class_name in _CLASSES.items():
        udf = loader.loadClass(class_name).newInstance()
        jsession.udf().register(name, udf, jsession.parseDataType(returns[name].json()))


def top_keys(text: Column) -> Column:
    """``struct<keys: array<string>, repeats: boolean>``: the top-level keys of a JSON object (as
    ``json_object_keys``), and whether an object below the top level repeats a key; ``null`` for text that is not
    a JSON object. Needs :func:`register`."""
    from pyspark.sql import functions as F

    return F.call_udf(TOP_KEYS, text)


def last_key_wins_text(text: Column) -> Column:
    """JSON text without the earlier copies of a key repeated in one object, at any depth, every other character as
    it is; text without a repeat, or that is not JSON, as it is. Needs :func:`register`."""
    from pyspark.sql import functions as F

    return F.call_udf(LAST_KEY_WINS, text)


def top_level_number(text: Column, key: str) -> Column:
    """The number the JSON object ``text`` holds under the top-level ``key`` (its last copy), as written; ``null``
    when that value is not a number, the key is absent (nested objects' keys are not looked at), or ``text`` is not
    a JSON object. Needs :func:`register`."""
    from pyspark.sql import functions as F

    return F.call_udf(TOP_LEVEL_NUMBER, text, F.lit(key))
