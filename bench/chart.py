"""The ratio table as a chart: req/s of every GET row over the yardstick's, one horizontal
bar each, written as SVG next to `latest.json`.

Hand-written SVG rather than matplotlib: a bar chart is a few rectangles and labels, and
this keeps the bench group free of matplotlib, numpy and Pillow (tens of MB, a font cache
built on first use) for one picture; the file is text, so it diffs and opens in a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from bench.hitpath import PATCH_ROWS, ROWS
from bench.hitpath_summary import request_label
from bench.report import ratio

WIDTH = 980
LABEL_WIDTH = 520
BAR_HEIGHT = 18
GAP = 6
TOP = 56
BOTTOM = 40
RIGHT = 70
FONT = "font-family='DejaVu Sans, Arial, sans-serif'"
SMALL = f"{FONT} font-size='12'"
COLORS = {
    "yardstick": "#7f7f7f",
    "product": "#9ecae1",
    "near_on": "#2ca02c",
    "near_off": "#ff7f0e",
    "peer": "#9467bd",
}


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    kind: str  # a COLORS key


def bars(results: dict[str, Any], load_rows: Sequence[tuple[str, str, str, Any]]) -> list[Bar]:
    """One bar per measured GET row: the main load table's, then the hit path's."""
    load = results.get("load", {})
    yard = load.get("yardstick", {}).get("rps")
    found: list[Bar] = []
    for key, label, route, _versus in load_rows:
        value = ratio(load.get(key, {}).get("rps"), yard, 3)
        if value is not None:
            kind = "yardstick" if key.startswith("yardstick") else "product"
            found.append(Bar(f"{label}: {route}", value, kind))
    patch_keys = {row.key for row in PATCH_ROWS}
    for row in ROWS:
        value = ratio(load.get(row.key, {}).get("rps"), yard, 3)
        if value is None or row.key in patch_keys:
            continue
        kind = {"near_on": "near_on", "near_off": "near_off", "nocache": "product"}.get(
            row.server, "peer"
        )
        label = f"{row.label}: {request_label(row, results.get('hit_path', {}))}"
        found.append(Bar(label, value, kind))
    return found


def render_svg(title: str, subtitle: str, data: Sequence[Bar]) -> str:
    scale_max = max([1.0, *(b.value for b in data)])
    plot = WIDTH - LABEL_WIDTH - RIGHT
    height = TOP + len(data) * (BAR_HEIGHT + GAP) + BOTTOM

    def x(value: float) -> float:
        return LABEL_WIDTH + plot * value / scale_max

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}'>",
        f"<rect width='{WIDTH}' height='{height}' fill='white'/>",
        f"<text x='10' y='20' {FONT} font-size='15' font-weight='bold'>{escape(title)}</text>",
        f"<text x='10' y='38' {SMALL} fill='#555'>{escape(subtitle)}</text>",
    ]
    for i, bar in enumerate(data):
        y = TOP + i * (BAR_HEIGHT + GAP)
        mid = y + BAR_HEIGHT / 2 + 4
        parts += [
            f"<text x='{LABEL_WIDTH - 8}' y='{mid}' {SMALL} text-anchor='end'>"
            f"{escape(bar.label)}</text>",
            f"<rect x='{LABEL_WIDTH}' y='{y}' width='{x(bar.value) - LABEL_WIDTH:.1f}' "
            f"height='{BAR_HEIGHT}' fill='{COLORS[bar.kind]}'/>",
            f"<text x='{x(bar.value) + 4:.1f}' y='{mid}' {SMALL}>{bar.value:.3f}</text>",
        ]
    bottom = TOP + len(data) * (BAR_HEIGHT + GAP)
    one = x(1.0)
    parts += [
        f"<line x1='{one:.1f}' y1='{TOP - 6}' x2='{one:.1f}' y2='{bottom}' stroke='#333' "
        "stroke-dasharray='4 3'/>",
        f"<text x='{one:.1f}' y='{bottom + 16}' {SMALL} text-anchor='middle'>"
        "1.0 = yardstick</text>",
        f"<line x1='{LABEL_WIDTH}' y1='{TOP - 6}' x2='{LABEL_WIDTH}' y2='{bottom}' stroke='#333'/>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def write_chart(
    path: Path, results: dict[str, Any], load_rows: Sequence[tuple[str, str, str, Any]]
) -> Path:
    meta = results["meta"]
    title = "tales-api bench: req/s as a ratio to the yardstick (same run)"
    tool = str(meta.get("load_tool", "-")).split(" Copyright")[0]
    other = max([0.0, *((r.get("other_cpu") or 0.0) for r in results.get("load", {}).values())])
    subtitle = (
        f"{meta['started_at']}, {meta['machine']}; {tool} {meta['load_shape']}; "
        f"other processes up to {other:.0%} CPU"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_svg(title, subtitle, bars(results, load_rows)))
    return path
