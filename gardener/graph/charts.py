"""The health page's charts, drawn in inline SVG: grouped bars and the rank curve.

No charting library: a few rectangles, lines and text per chart, every mark titled, the y
axis from zero. ``page`` places them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gardener.graph.health import Skew
from gardener.graph.page_map import PALETTE


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass(frozen=True)
class Series:
    name: str
    values: Mapping[str, float]
    colour: str


def bar_chart(chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series],
              *, percent: bool = True, width: int = 900, height: int = 260) -> str:
    """Grouped vertical bars, one group per category; the y axis starts at zero."""
    left, bottom, top = 44, 34, 26
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max((v for s in series for v in s.values.values()), default=0.0) or 1.0
    group_w = plot_w / max(len(categories), 1)
    bar_w = max(group_w * 0.8 / max(len(series), 1), 1.0)
    out = [f'<svg id="{chart_id}" class="chart" xmlns="http://www.w3.org/2000/svg" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
           f'<text class="title" x="{left}" y="16">{_e(title)}</text>']
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        shown = f"{100 * peak * frac:.0f}%" if percent else f"{peak * frac:.0f}"
        out.append(f'<line class="grid" x1="{left}" x2="{width - 10}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/><text class="axis" x="{left - 4}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{shown}</text>')
    for i, cat in enumerate(categories):
        gx = left + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            v = s.values.get(cat, 0.0)
            h = plot_h * v / peak
            shown = f"{100 * v:.1f}%" if percent else f"{v:g}"
            out.append(f'<rect class="bar" data-series="{_e(s.name)}" x="{gx + j * bar_w:.1f}" '
                       f'y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="{s.colour}"><title>{_e(s.name)}, {_e(cat)}: {shown}</title>'
                       '</rect>')
        out.append(f'<text class="axis" x="{left + (i + 0.5) * group_w:.1f}" '
                   f'y="{height - bottom + 14}" text-anchor="middle">{_e(cat)}</text>')
    for j, s in enumerate(series):
        lx = left + 8 + j * 190
        out.append(f'<rect x="{lx}" y="{height - 13}" width="10" height="10" '
                   f'fill="{s.colour}"/><text class="axis" x="{lx + 14}" '
                   f'y="{height - 4}">{_e(s.name)}</text>')
    out.append("</svg>")
    return "".join(out)


def rank_chart(skews: Sequence[Skew], width: int = 420, height: int = 300) -> str:
    """The empirical distribution of target positions in the alphabet, against the diagonal
    a library-wide spread would follow: the skew detector, as a picture."""
    pad = 40
    size_w, size_h = width - pad - 12, height - pad - 28
    out = [f'<svg id="rank-chart" class="chart" xmlns="http://www.w3.org/2000/svg" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="rank distribution">',
           f'<text class="title" x="{pad}" y="16">Where link targets sit in the sorted slugs'
           '</text>',
           f'<rect class="frame" x="{pad}" y="28" width="{size_w}" height="{size_h}"/>',
           f'<line class="uniform" x1="{pad}" y1="{28 + size_h}" x2="{pad + size_w}" y2="28"/>']
    colour = {"inferred": PALETTE[2], "human": PALETTE[0]}
    for s in skews:
        pos = s.rank_positions
        if not pos:
            continue
        step = max(1, len(pos) // 400)
        points = [f"{pad:.1f},{28 + size_h:.1f}"]
        for i in range(0, len(pos), step):
            y = 28 + size_h * (1 - (i + 1) / len(pos))
            points.append(f"{pad + size_w * pos[i]:.1f},{y:.1f}")
        points.append(f"{pad + size_w:.1f},28.0")
        out.append(f'<polyline class="ecdf" data-origin="{s.origin}" fill="none" '
                   f'stroke="{colour.get(s.origin, "#333")}" stroke-width="2" '
                   f'points="{" ".join(points)}"><title>{s.origin}: KS distance {s.ks:.2f}'
                   '</title></polyline>')
    out.append(f'<text class="axis" x="{pad}" y="{height - 8}">a … z (position among the '
               'slugs)</text>')
    legend_y = 44
    for origin, c in colour.items():
        out.append(f'<text class="axis" x="{pad + 8}" y="{legend_y}" fill="{c}">{origin}</text>')
        legend_y += 14
    out.append(f'<text class="axis" x="{pad + size_w - 4}" y="{28 + size_h - 6}" '
               'text-anchor="end">uniform</text></svg>')
    return "".join(out)
