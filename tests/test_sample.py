"""``lake sample``: the generator behind the demo, the tests' inputs and the benchmarks."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from lakelib.sample import EVENTS, SampleSpec, generate


def track_events(root: Path) -> list[dict]:
    out = []
    for path in sorted(root.rglob("*.gz")):
        for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("type") == "track" and message.get("event") != "Broken":
                out.append(message)
    return out


def test_track_names_gives_that_many_event_names_each_with_its_templates_properties(tmp_path):
    generate(SampleSpec(out=str(tmp_path / "wide"), sources=1, days=1, events_per_day=3000, files_per_day=1,
                        track_names=40))
    tracks = track_events(tmp_path / "wide")
    assert len({m["event"] for m in tracks}) == 40
    templates = dict(EVENTS)
    for m in tracks:
        template, number = m["event"].rsplit(" ", 1)
        assert len(number) == 3 and set(m["properties"]) == set(templates[template])


def test_by_default_the_five_spec_events_and_the_same_seed_gives_the_same_bytes(tmp_path, monkeypatch):
    import gzip
    import types

    for name, clock in (("a", 1.7e9), ("b", 1.8e9)):  # two runs at different times (gzip would stamp its clock)
        monkeypatch.setattr(gzip, "time", types.SimpleNamespace(time=lambda now=clock: now))
        generate(SampleSpec(out=str(tmp_path / name), sources=1, days=1, events_per_day=500, files_per_day=1))
    assert {m["event"] for m in track_events(tmp_path / "a")} == {name for name, _ in EVENTS}
    files = [sorted((tmp_path / name).rglob("*.gz")) for name in ("a", "b")]
    assert [p.read_bytes() for p in files[0]] == [p.read_bytes() for p in files[1]]
