"""The conversion chart (matplotlib, PNG): median wall-clock per figure, each run as a dot, peak RSS as labels."""
from __future__ import annotations

from typing import Any, Mapping

from benchmarks.core import CONVERSION, summarize


def conversion_chart(conversion: Mapping[str, Any], path: str, title: str) -> None:
    """Write the chart of ``conversion`` (figure -> runs) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, _ in CONVERSION if conversion.get(k)]
    stats = {k: summarize(conversion[k]) for k in keys}
    labels = {"lakelib": "lakelib json_to_parquet", "naive": "naive Spark job", "duckdb": "DuckDB (2 threads)",
              "floor": "floor: Spark text count"}
    colors = {"lakelib": "#1f77b4", "naive": "#ff7f0e", "duckdb": "#2ca02c", "floor": "#7f7f7f"}
    right = max([1.0, *[max([stats[k]["seconds"] or 0, *stats[k]["runs"]]) for k in keys]])
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ys = list(range(len(keys)))[::-1]
    for y, key in zip(ys, keys):
        s = stats[key]
        ax.barh(y, s["seconds"] or 0, color=colors[key], alpha=0.85)
        ax.plot(s["runs"], [y] * len(s["runs"]), "k.", markersize=5)
        rss = f", peak {s['rss_mb']:,.0f} MB" if s["rss_mb"] else ""
        end = max([s["seconds"] or 0, *s["runs"]])
        ax.text(end + right * 0.01, y, f" {s['seconds']:.1f} s{rss}", va="center", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([labels[k] for k in keys])
    ax.set_xlabel("wall-clock seconds, process start included (median; dots = runs)")
    ax.set_title(title, fontsize=9)
    ax.set_xlim(0, right * 1.45)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
