"""Realistic raw Segment logs in the S3 destination's layout, for demos, tests and benchmarks.

``lake sample --out DIR --sources 2 --days 3 --events-per-day 5000`` writes
``DIR/<sourceId>/<received-day-epoch-ms>/<batch-epoch-ms>.<hex>.gz``: gzipped JSON lines of all six message
types with nested ``context``, ``properties`` and ``traits``, some late events (sent days before Segment received
them), a small share of retried messages (same messageId, later ``receivedAt``), and a few malformed lines of each
reject reason. The same seed gives the same bytes.
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from lakelib.cli import command
from lakelib.paths import day_folder, parse_date

log = logging.getLogger(__name__)

SOURCE_NAMES = ("web", "ios", "android", "server", "backend", "kiosk")
EVENTS = (
    ("Product Viewed", {"product_id": "sku", "price": "price", "category": "category"}),
    ("Product Added", {"product_id": "sku", "price": "price", "quantity": "qty"}),
    ("Order Completed", {"order_id": "order", "revenue": "price", "products": "products"}),
    ("Signed Up", {"plan": "plan", "referrer": "url"}),
    ("Video Played", {"video_id": "sku", "position": "qty", "sound": "bool"}),
)
TYPE_WEIGHTS = (("track", 60), ("page", 20), ("identify", 8), ("screen", 7), ("group", 3), ("alias", 2))
MALFORMED = (
    "invalid_json", "not_an_object", "missing_message_id", "invalid_type", "invalid_timestamp",
)


@dataclass
class SampleSpec:
    """What to generate."""

    out: str
    sources: int = 2
    days: int = 3
    events_per_day: int = 5000
    files_per_day: int = 3
    start: date = date(2026, 1, 1)
    seed: int = 7
    duplicate_share: float = 0.01
    malformed_share: float = 0.004
    late_share: float = 0.03
    source_ids: list[str] = field(default_factory=list)
    #: Distinct track event names (``Product Viewed 017``...); ``0``: the five of :data:`EVENTS`.
    track_names: int = 0


@dataclass
class SampleResult:
    """What was written: files, lines, and the intended composition (for checks)."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    duplicates: int = 0
    malformed: dict[str, int] = field(default_factory=lambda: {r: 0 for r in MALFORMED})
    blank: int = 0


def source_ids(n: int) -> list[str]:
    """``n`` readable source ids (``web``, ``ios``, ..., then ``web2``...)."""
    return [SOURCE_NAMES[i % len(SOURCE_NAMES)] + (str(i // len(SOURCE_NAMES) + 1) if i >= len(SOURCE_NAMES) else "")
            for i in range(n)]


def generate(spec: SampleSpec) -> SampleResult:
    """Write the sample and return what it holds.

    Parameters
    ----------
    spec
        Sizes, seed and shares.
    """
    rng = random.Random(spec.seed)
    result = SampleResult()
    ids = spec.source_ids or source_ids(spec.sources)
    for source in ids:
        users = [f"user-{rng.randrange(10**8):08d}" for _ in range(max(10, spec.events_per_day // 20))]
        for offset in range(spec.days):
            day = spec.start + timedelta(days=offset)
            folder = os.path.join(spec.out, source, day_folder(day))
            os.makedirs(folder, exist_ok=True)
            lines = _day_lines(rng, spec, source, day, users, result)
            per_file = -(-len(lines) // spec.files_per_day)
            midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            for i in range(spec.files_per_day):
                chunk = lines[i * per_file:(i + 1) * per_file]
                stamp = int((midnight + timedelta(hours=24 * (i + 1) / spec.files_per_day)).timestamp() * 1000)
                path = os.path.join(folder, f"{stamp}.{rng.getrandbits(32):08x}.gz")
                # the batch's time in the gzip header, not the clock's: the same seed gives the same bytes
                with gzip.GzipFile(path, "wb", compresslevel=6, mtime=stamp // 1000) as handle:
                    handle.write(("\n".join(chunk) + "\n").encode("utf-8"))
                result.files.append(path)
    log.info("wrote %d files, %d lines under %s", len(result.files), result.lines, spec.out)
    return result


def _day_lines(rng, spec, source, day, users, result) -> list[str]:
    midnight = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    received = sorted(midnight + timedelta(microseconds=rng.randrange(86_400_000_000)) for _ in range(spec.events_per_day))
    lines: list[str] = []
    messages: list[dict] = []
    for when in received:
        message = _message(rng, source, when, users, late=rng.random() < spec.late_share, names=spec.track_names)
        messages.append(message)
        lines.append(json.dumps(message, separators=(",", ":"), ensure_ascii=False))
        roll = rng.random()
        if roll < spec.duplicate_share and messages:
            original = dict(rng.choice(messages))
            retry = _iso(min(_parse(original["receivedAt"]) + timedelta(seconds=rng.randrange(1, 600)),
                             midnight + timedelta(days=1) - timedelta(milliseconds=1)))
            original["receivedAt"] = retry
            lines.append(json.dumps(original, separators=(",", ":"), ensure_ascii=False))
            result.duplicates += 1
        elif roll < spec.duplicate_share + spec.malformed_share:
            reason = rng.choice(MALFORMED)
            lines.append(_malformed(rng, reason, when))
            result.malformed[reason] += 1
        elif roll > 0.9995:
            lines.append("")
            result.blank += 1
    result.lines += len(lines)
    return lines


def _message(rng: random.Random, source: str, received: datetime, users: list[str], late: bool,
             names: int = 0) -> dict:
    kind = rng.choices([t for t, _ in TYPE_WEIGHTS], [w for _, w in TYPE_WEIGHTS])[0]
    lag = timedelta(days=rng.randint(1, 5)) if late else timedelta(milliseconds=rng.randrange(50, 4000))
    sent = received - lag
    user = rng.choice(users)
    mobile = source in ("ios", "android") or rng.random() < 0.2
    message: dict = {
        "anonymousId": f"{rng.getrandbits(128):032x}",
        "context": _context(rng, mobile),
        "integrations": {} if rng.random() < 0.8 else {"All": True, "Mixpanel": False},
        "messageId": f"ajs-{rng.getrandbits(128):032x}",
        "receivedAt": _iso(received),
        "sentAt": _iso(sent),
        "timestamp": _iso(sent - timedelta(milliseconds=rng.randrange(0, 300)), offset=rng.random() < 0.1),
        "originalTimestamp": _iso(sent - timedelta(milliseconds=rng.randrange(0, 300))),
        "type": kind,
        "channel": "mobile" if mobile else rng.choice(["client", "server"]),
        "version": 2 if rng.random() < 0.7 else "1.1",
    }
    if rng.random() < 0.75:
        message["userId"] = user
    if kind == "track":
        if names:
            i = rng.randrange(names)
            template, props = EVENTS[i % len(EVENTS)]
            name = f"{template} {i:03d}"
        else:
            name, props = rng.choice(EVENTS)
        message["event"] = name
        message["properties"] = {k: _value(rng, v) for k, v in props.items()}
    elif kind in ("page", "screen"):
        message["name"] = rng.choice(["Home", "Pricing", "Docs", "Checkout", "Über uns"])
        message["properties"] = {"title": message["name"], "url": f"https://example.com/{rng.randrange(100)}"}
    elif kind == "identify":
        message["traits"] = {
            "email": f"{user}@example.com", "plan": rng.choice(["free", "pro"]), "logins": rng.randrange(1, 90),
            "address": {"city": rng.choice(["San Francisco", "Zürich", "東京"]), "postalCode": "94103"},
        }
    elif kind == "group":
        message["groupId"] = f"grp-{rng.randrange(500)}"
        message["traits"] = {"name": "Initech", "employees": rng.randrange(5, 5000), "total billed": 830}
    else:
        message["previousId"] = f"{rng.getrandbits(64):016x}"
    if rng.random() < 0.05:
        message["projectId"] = "proj-" + source
    return message


def _context(rng: random.Random, mobile: bool) -> dict:
    context: dict = {
        "ip": f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "library": {"name": "analytics-ios" if mobile else "analytics.js", "version": "4.1.0"},
        "locale": rng.choice(["en-US", "de-DE", "fr-FR", "ja-JP"]),
        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15",
    }
    if mobile:
        context["device"] = {"id": f"{rng.getrandbits(64):016X}", "manufacturer": "Apple", "model": "iPhone15,2"}
        context["os"] = {"name": "iOS", "version": "17.1"}
        context["screen"] = {"width": 390, "height": 844, "density": 3}
        context["network"] = {"wifi": rng.random() < 0.6, "cellular": True}
    else:
        context["page"] = {"path": "/", "referrer": "", "title": "Home", "url": "https://example.com/"}
    if rng.random() < 0.1:
        context["campaign"] = {"name": "Spring", "source": "newsletter", "medium": "email"}
    return context


def _value(rng: random.Random, kind: str):
    if kind == "price":
        return round(rng.uniform(1, 300), 2)
    if kind == "qty":
        return rng.randrange(1, 10)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "products":
        return [{"sku": f"sku-{rng.randrange(1000)}", "price": round(rng.uniform(1, 50), 2)} for _ in range(2)]
    if kind == "url":
        return f"https://example.com/r/{rng.randrange(100)}"
    return f"{kind}-{rng.randrange(1000)}"


def _malformed(rng: random.Random, reason: str, when: datetime) -> str:
    base = {"messageId": f"bad-{rng.getrandbits(64):016x}", "type": "track", "event": "Broken",
            "timestamp": _iso(when), "receivedAt": _iso(when)}
    if reason == "invalid_json":
        return rng.choice([json.dumps(base)[:-7], "{'messageId': 'single-quoted'}", json.dumps(base) + "}{"])
    if reason == "not_an_object":
        return rng.choice(["[1,2,3]", '"just a string"', "42", "null"])
    if reason == "missing_message_id":
        base.pop("messageId") if rng.random() < 0.5 else base.update(messageId="")
    elif reason == "invalid_type":
        base["type"] = rng.choice(["Track", "click", 7])
    else:
        base["timestamp"] = rng.choice(["yesterday", "2026-13-01T00:00:00Z", 1767225600])
    return json.dumps(base)


def _iso(moment: datetime, offset: bool = False) -> str:
    if offset:
        local = moment.astimezone(timezone(timedelta(hours=2)))
        return local.isoformat(timespec="milliseconds")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder to write the raw layout into (lake.raw)")
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--events-per-day", type=int, default=5000)
    parser.add_argument("--files-per-day", type=int, default=3)
    parser.add_argument("--start-date", default="2026-01-01", help="first received day (YYYY-MM-DD)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--track-names", type=int, default=0,
                        help="distinct track event names (default: the five of the Segment spec's examples)")


@command("sample", "write realistic raw Segment logs in the S3 destination's layout", _add_arguments)
def run(args: argparse.Namespace) -> int:
    """``lake sample``."""
    spec = SampleSpec(
        out=args.out, sources=args.sources, days=args.days, events_per_day=args.events_per_day,
        files_per_day=args.files_per_day, start=parse_date(args.start_date), seed=args.seed,
        track_names=args.track_names,
    )
    result = generate(spec)
    print(
        f"lake sample: {len(result.files)} files, {result.lines:,} lines ({result.duplicates:,} retried duplicates, "
        f"{sum(result.malformed.values()):,} malformed, {result.blank} blank) under {args.out}"
    )
    return 0
