"""lakelib.json_udfs: the JVM's JSON UDFs, the committed jar, and the jar from a ``--py-files`` zip."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakelib import json_udfs

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def udfs(spark):
    json_udfs.register(spark)
    json_udfs.register(spark)  # a second call (another job in the same session) changes nothing
    return spark


@pytest.mark.parametrize("text, expected", [
    ('{"a":{"id":"first","id":"last"}}', '{"a":{"id":"last"}}'),
    ('{"k":{"id":1,"n":{"id":2,"z":[{"q":1,"q":{"r":0,"r":3}}]},"id":3}}',
     '{"k":{"n":{"id":2,"z":[{"q":{"r":3}}]},"id":3}}'),
    ('{ "a" : 1 , "b" : {"c": 1, "c" :2 } }', '{ "a" : 1 , "b" : {"c" :2 } }'),
    ('{"a\\u0062":1,"ab":2}', '{"ab":2}'),
    ('{"id":1,"x":{"id":2},"id":3}', '{"x":{"id":2},"id":3}'),
    ('{"é":1,"😀":{"k":1,"k":2},"é":2}', '{"😀":{"k":2},"é":2}'),
    ('{"s":"{\\"x\\":1,\\"x\\":2}","t":"a,\\"b\\":{"}', None),
    ('[{"a":1},{"a":2}]', None),
    ('{"name":"a","os":{"name":"b"},"e":{},"f":[]}', None),
    ('{"unterminated', None), ('}}]]{', None), ("", None), ("{'a':1,'a':2}", None), ("[1,2]", None),
])
def test_last_key_wins_text_cuts_earlier_copies_in_every_object_and_keeps_every_other_character(udfs, text, expected):
    got = udfs.createDataFrame([(text,)], "v string").select(json_udfs.last_key_wins_text(F.col("v"))).first()[0]
    assert got == (text if expected is None else expected)


@pytest.mark.parametrize("text, keys, repeats", [
    ('{"b":1,"a":{"x":1},"b":2}', ["b", "a", "b"], False),  # the top level's repeats are the maps' to resolve
    ('{"context":{"device":{"id":"a","id":"b"}}}', ["context"], True),
    ('{"context":{"ip":"1","ip":"2"}}', ["context"], True),
    ('{"p":{"products":[{"sku":"a","n":1},{"sku":"b","n":2}]}}', ["p"], False),
    ('{"p":{"name":"x","sub":{"name":"y"}},"q":[[{"a":1},{"a":2}]]}', ["p", "q"], False),
    ('{"p":{"s":"{\\"k\\":1,\\"k\\":2}"}}', ["p"], False),
    ('{"a":[1,{"k":{"z":1,"z":2}}]}', ["a"], True),
    ('{}', [], False),
])
def test_top_keys_lists_the_top_level_keys_and_says_whether_a_nested_object_repeats_one(udfs, text, keys, repeats):
    df = udfs.createDataFrame([(text,)], "v string")
    got = df.select(json_udfs.top_keys(F.col("v")).alias("k"), F.json_object_keys("v").alias("spark")).first()
    assert (got["k"]["keys"], got["k"]["repeats"]) == (keys, repeats)
    assert got["k"]["keys"] == got["spark"], "the keys Spark's json_object_keys gives"


@pytest.mark.parametrize("text", ["[1]", '"a"', "1", "null", "not json", "{'a':1}", '{"a":NaN}', "", None])
def test_top_keys_is_null_for_text_that_is_not_a_json_object(udfs, text):
    assert udfs.createDataFrame([(text,)], "v string").select(json_udfs.top_keys(F.col("v"))).first()[0] is None


@pytest.mark.parametrize("text, number", [
    ('{"messageId":1e400,"type":"track"}', "1e400"),
    ('{"messageId" : 0.1000000000000000001}', "0.1000000000000000001"),
    ('{"p":{"messageId":7},"a":[{"messageId":8}],"messageId":-12}', "-12"),
    ('{"messageId":1,"messageId":2e400}', "2e400"),
    ('{"messageId":1,"messageId":"x"}', None),
    ('{"messageId":"12"}', None), ('{"p":{"messageId":7}}', None), ('[{"messageId":1}]', None), ("not json", None),
])
def test_top_level_number_is_the_last_top_level_copy_as_written(udfs, text, number):
    df = udfs.createDataFrame([(text,)], "v string")
    assert df.select(json_udfs.top_level_number(F.col("v"), "messageId")).first()[0] == number


@pytest.mark.skipif(shutil.which("javac") is None, reason="no JDK (javac) to build java/ with")
def test_the_committed_jar_is_built_from_java_sources(tmp_path):
    """``make jar`` was run after the last change to java/: the jar's classes are what javac makes of the sources."""
    import pyspark

    jars = sorted(str(p) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar"))
    sources = sorted(str(p) for p in (REPO / "java").rglob("*.java"))
    subprocess.run(["javac", "--release", "8", "-Xlint:-options", "-cp", os.pathsep.join(jars), "-d", str(tmp_path),
                    *sources], check=True)
    built = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*.class")}
    with zipfile.ZipFile(REPO / "lakelib" / "resources" / json_udfs.JAR) as jar:
        committed = {n: jar.read(n) for n in jar.namelist() if n.endswith(".class")}
    assert built.keys() == committed.keys()
    assert all(built[n] == committed[n] for n in built), "run 'make jar' and commit lakelib/resources/lakelib-json.jar"


def test_from_a_py_files_zip_the_jar_is_copied_out_once_as_a_file(tmp_path):
    """On EMR lakelib is imported from the ``--py-files`` zip: Spark needs the jar as a file of its own."""
    bundle = tmp_path / "lakelib.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for path in (REPO / "lakelib").rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(REPO).as_posix())
    code = ("import lakelib.json_udfs as j, os; a = j.jar_path(); b = j.jar_path(); "
            "print(a == b, os.path.isfile(a), os.path.getsize(a), a.startswith(os.path.dirname(j.__file__)))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(bundle)}, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.split()
    size = (REPO / "lakelib" / "resources" / json_udfs.JAR).stat().st_size
    assert out == ["True", "True", str(size), "False"]


def test_under_a_folder_spark_would_mangle_the_jar_is_copied_to_a_plain_path(tmp_path):
    """Hadoop's Path encodes a space or a quote a second time: the jar would be added but its classes not found."""
    odd = tmp_path / "it's a dir"
    shutil.copytree(REPO / "lakelib", odd / "lakelib", ignore=shutil.ignore_patterns("__pycache__"))
    code = "import lakelib.json_udfs as j, os, re; p = j.jar_path(); print(bool(j._PLAIN_PATH.match(p)), os.path.getsize(p))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(odd)}, cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", str((REPO / "lakelib" / "resources" / json_udfs.JAR).stat().st_size)]
