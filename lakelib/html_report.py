"""A run report as one self-contained HTML page: the summary, the error line, the totals, a chart, the partitions.

Written beside every JSON report (``<run_id>.html``, :func:`lakelib.report.write_report`) and found with
``lake report [RUN_ID]``. The charts are inline SVG drawn here: the page is written on the cluster's driver,
where matplotlib is not installed, and must open offline in any browser.
"""
from __future__ import annotations

import html
import json
from typing import Any, Mapping, Sequence

#: Where each partition's input lines went (json_to_parquet): the stacked segments of its bar, in order.
FATES = (("rows_written", "#2f6db5"), ("duplicates_dropped", "#e0a030"), ("quarantined", "#c8423b"))
#: A colour per quarantine reason (or any other breakdown), in turn.
PALETTE = ("#c8423b", "#7a4fa8", "#3c9a6a", "#d9822b", "#5a6d80", "#b5487a")
MAX_BARS = 400

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 6px}
.status{display:inline-block;padding:1px 8px;border-radius:4px;color:#fff;background:#2e7d32}
.status.failed{background:#b71c1c} .error{color:#b71c1c;font-weight:600;margin:8px 0}
table{border-collapse:collapse;margin:4px 0} td,th{border:1px solid #9aa7b8;padding:2px 8px;text-align:right}
th{background:#dde6f3} td:first-child,th:first-child{text-align:left} .muted{color:#666}
"""


def _e(value: Any) -> str:
    """Escaped text of a cell: a breakdown (``quarantined_by_reason``) as its non-zero entries."""
    if isinstance(value, Mapping):
        value = ", ".join(f"{k} {v}" for k, v in value.items() if v) or "-"
    elif isinstance(value, list):
        value = json.dumps(value, default=str)
    return html.escape("" if value is None else str(value))


def render(doc: Mapping[str, Any]) -> str:
    """The HTML page of a run report (its JSON document as :meth:`lakelib.report.RunReport.to_dict` gives it).

    >>> page = render({"job": "demo", "run_id": "r1", "status": "failed", "error": "no <raw> data",
    ...                "partitions": [], "totals": {}})
    >>> "no &lt;raw&gt; data" in page and page.startswith("<!DOCTYPE html>")
    True
    """
    status = str(doc.get("status"))
    parts: list[Mapping[str, Any]] = list(doc.get("partitions") or [])
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(doc.get('job'))} {_e(doc.get('run_id'))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(doc.get('job'))} <span class=\"status {_e(status)}\">{_e(status)}</span></h1>",
        f"<div class=\"muted\">run {_e(doc.get('run_id'))} &middot; started {_e(doc.get('started_at'))} &middot; "
        f"finished {_e(doc.get('finished_at'))}</div>",
    ]
    if doc.get("error"):
        out.append(f"<div class=\"error\">error: {_e(doc.get('error'))}</div>")
    if doc.get("arguments"):
        out.append(f"<div class=\"muted\">arguments: {_e(' '.join(map(str, doc['arguments'])))}</div>")
    totals = dict(doc.get("totals") or {})
    if totals:
        out += ["<h2>Totals</h2>", _table(["counter", "value"], [[k, v] for k, v in totals.items()])]
    out += _charts(parts, totals)
    if parts:
        columns = list(dict.fromkeys(k for p in parts for k in p))
        out += [f"<h2>Partitions ({len(parts)})</h2>", _table(columns, [[p.get(c) for c in columns] for p in parts])]
    else:
        out.append("<p class=\"muted\">no partition written</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _charts(parts: Sequence[Mapping[str, Any]], totals: Mapping[str, Any]) -> list[str]:
    out = []
    def numeric(key: str) -> bool:
        return any(isinstance(p.get(key), (int, float)) and not isinstance(p.get(key), bool) for p in parts)

    labels = [" ".join(str(v) for v in p.values() if isinstance(v, str)) for p in parts]
    fates = [(k, c) for k, c in FATES if numeric(k)]
    if fates:
        out += ["<h2>Lines read per partition</h2>",
                bars(labels, [(k, c, [float(p.get(k) or 0) for p in parts]) for k, c in fates])]
    else:  # another job: its first counter, per partition
        first = next((k for p in parts for k in p if numeric(k)), None)
        if first is not None:
            out += [f"<h2>{_e(first)} per partition</h2>",
                    bars(labels, [(first, FATES[0][1], [float(p.get(first) or 0) for p in parts])])]
    by_reason = totals.get("quarantined_by_reason")
    reasons = [(r, n) for r, n in by_reason.items() if n] if isinstance(by_reason, Mapping) else []
    if reasons:
        series = [(r, PALETTE[i % len(PALETTE)], [float(n)]) for i, (r, n) in enumerate(reasons)]
        out += ["<h2>Quarantined lines by reason</h2>", bars(["all partitions"], series)]
    return out


def bars(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float]]], width: int = 640) -> str:
    """Horizontal stacked bars as inline SVG: one bar per label, a segment per ``(name, colour, values)`` series,
    a legend above; at most :data:`MAX_BARS` bars.

    >>> svg = bars(["web 2026-01-01"], [("rows_written", "#2f6db5", [9.0]), ("quarantined", "#c8423b", [1.0])])
    >>> svg.count("<rect"), 'width="414.0"' in svg   # two legend keys, two segments: 9/10 of 460 pixels
    (4, True)
    """
    labels = list(labels)[:MAX_BARS]
    top = max((sum(s[2][i] for s in series) for i in range(len(labels))), default=0.0) or 1.0
    left, row, legend = 170, 18, 22
    plot = width - left - 10
    height = legend + row * len(labels) + 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11">']
    x = 0
    for name, colour, _ in series:
        out.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="13">{_e(name)}</text>')
        x += 24 + 7 * len(name)
    for i, label in enumerate(labels):
        y = legend + i * row
        out.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{_e(label[:28])}</text>')
        start = float(left)
        for name, colour, values in series:
            w = round(plot * values[i] / top, 1)
            if w > 0:
                out.append(f'<rect x="{start}" y="{y + 2}" width="{w}" height="{row - 4}" fill="{colour}">'
                           f'<title>{_e(label)}: {_e(name)} {values[i]:g}</title></rect>')
            start += w
    out.append("</svg>")
    return "".join(out)
