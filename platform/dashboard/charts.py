"""Small SVG charts drawn on the server, put inline in the page.

Hand-built rather than pygal: pygal's SVG carries a <style> element and inline style attributes,
which the page's CSP (`style-src 'self'`) blocks, and scripts for its tooltips. Here only
presentation attributes (fill, stroke, font-size): CSP does not govern them, so the SVG can sit
inline and costs no extra request. Every text goes through escape(); a chart is a few hundred
bytes to a few kilobytes, and scales to any width (viewBox, width 100 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

INK, MUTED, ACCENT, LATE, LINE = "#1d2430", "#5b6675", "#0b6e4f", "#b3261e", "#d8dde4"


def _svg(width: int, height: int, body: list[str], title: str) -> SafeString:
    return mark_safe(  # noqa: S308 — every text below is escaped
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" class="chart"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _num(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def columns(points: Sequence[tuple[str, float]], *, title: str, label_every: int = 1) -> SafeString:
    """Vertical bars, one per point (e.g. studies per day)."""
    width, height, top, bottom = 520, 170, 20, 26
    peak = max((v for _l, v in points), default=0) or 1
    n = max(len(points), 1)
    step = width / n
    body = [f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="{LINE}"/>']
    for i, (label, value) in enumerate(points):
        h = (height - top - bottom) * value / peak
        x = i * step
        body.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{height - bottom - h:.1f}" width="{step * 0.8:.1f}" '
            f'height="{h:.1f}" fill="{ACCENT}"><title>{escape(label)} : {_num(value)}</title></rect>'
        )
        if i % label_every == 0:
            body.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 6}" font-size="14" fill="{MUTED}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    body.append(f'<text x="2" y="15" font-size="14" fill="{MUTED}">max {_num(peak)}</text>')
    return _svg(width, height, body, title)


def bars(
    rows: Sequence[tuple[str, float | None, float | None]],
    *,
    title: str,
    unit: str,
    second_label: str = "",
) -> SafeString:
    """Horizontal bars: per row a value and an optional mark (a p90, a budget), with the unit.
    A mark drawn past the value in red: the value exceeded it (a budget spent)."""
    row_h, label_w, width = 32, 130, 520
    height = row_h * max(len(rows), 1) + 8
    peak = max((max(v or 0, m or 0) for _l, v, m in rows), default=0) or 1
    scale = (width - label_w - 190) / peak  # room for the value written after the bar
    body = []
    for i, (label, value, mark) in enumerate(rows):
        y = 4 + i * row_h
        body.append(f'<text x="0" y="{y + 19}" font-size="15" fill="{INK}">{escape(label[:14])}</text>')
        w = (value or 0) * scale
        body.append(f'<rect x="{label_w}" y="{y + 5}" width="{w:.1f}" height="18" fill="{ACCENT}"/>')
        text = "—" if value is None else f"{_num(value)} {unit}"
        if mark is not None:
            mx = label_w + mark * scale
            colour = LATE if (value or 0) > mark else INK
            body.append(
                f'<line x1="{mx:.1f}" y1="{y + 1}" x2="{mx:.1f}" y2="{y + 27}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
            text += f" · {second_label} {_num(mark)}" if second_label else ""
        body.append(
            f'<text x="{label_w + max(w, (mark or 0) * scale) + 6:.1f}" y="{y + 19}" font-size="14" '
            f'fill="{MUTED}">{escape(text)}</text>'
        )
    return _svg(width, height, body, title)
