"""Server-side SVG charts: plain markup with presentation attributes, no script, no inline style.

So they render under a strict Content-Security-Policy and read without JavaScript.
"""
from django.utils.html import escape

OUTCOME_COLOURS = {
    "ok": "#2e7d32", "queued": "#0277bd", "tool_error": "#f9a825", "denied": "#6a1b9a",
    "rate_limited": "#ef6c00", "invalid": "#8d6e63", "timeout": "#c62828", "internal_error": "#37474f",
}
_LABEL_W = 220
_BAR_W = 420
_ROW_H = 24
_FONT = 'font-family="sans-serif" font-size="12"'


def _label(name: str) -> str:
    """A tool name that fits the label column (the full name is in the bar's tooltip and the table)."""
    return escape(name if len(name) <= 26 else name[:25] + "\u2026")


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def stacked_bars(*, title: str, rows, outcomes: list[str]) -> str:
    """One horizontal bar per tool, split into coloured segments per outcome, total at the end."""
    if not rows:
        return ""
    longest = max(row.total for row in rows) or 1
    legend = [o for o in outcomes if any(row.by_outcome.get(o) for row in rows)]
    body = []
    x = 0
    for outcome in legend:  # legend across the top
        body.append(f'<rect x="{x}" y="2" width="12" height="12" fill="{OUTCOME_COLOURS.get(outcome, "#999")}"/>'
                    f'<text x="{x + 16}" y="12" {_FONT}>{escape(outcome)}</text>')
        x += 24 + 7 * len(outcome)
    for index, row in enumerate(rows):
        y = 24 + index * _ROW_H
        body.append(f'<text x="{_LABEL_W - 6}" y="{y + 15}" text-anchor="end" {_FONT}>{_label(row.tool_name)}</text>')
        offset = _LABEL_W
        for outcome in legend:
            count = row.by_outcome.get(outcome, 0)
            if not count:
                continue
            width = max(1.0, _BAR_W * count / longest)
            body.append(f'<rect x="{offset:.1f}" y="{y + 3}" width="{width:.1f}" height="{_ROW_H - 6}" '
                        f'fill="{OUTCOME_COLOURS.get(outcome, "#999")}">'
                        f"<title>{escape(row.tool_name)}: {count} {escape(outcome)}</title></rect>")
            offset += width
        body.append(f'<text x="{offset + 6:.1f}" y="{y + 15}" {_FONT}>{row.total}</text>')
    return _svg(_LABEL_W + _BAR_W + 80, 30 + len(rows) * _ROW_H, title, body)


def duration_bars(*, title: str, rows) -> str:
    """Mean duration per tool as bars, with p95 and max written beside them."""
    if not rows:
        return ""
    longest = max(row.avg_ms for row in rows) or 1.0
    bar_w = 300  # leaves room for the figures written after the longest bar
    body = []
    for index, row in enumerate(rows):
        y = 4 + index * _ROW_H
        width = max(1.0, bar_w * row.avg_ms / longest)
        p95 = f", p95 {row.p95_ms:.1f} ms" if row.p95_ms is not None else ""
        body.append(
            f'<text x="{_LABEL_W - 6}" y="{y + 15}" text-anchor="end" {_FONT}>{_label(row.tool_name)}</text>'
            f'<rect x="{_LABEL_W}" y="{y + 3}" width="{width:.1f}" height="{_ROW_H - 6}" fill="#1565c0">'
            f"<title>{escape(row.tool_name)}</title></rect>"
            f'<text x="{_LABEL_W + width + 6:.1f}" y="{y + 15}" {_FONT}>'
            f"{row.avg_ms:.1f} ms mean{p95}, max {row.max_ms:.1f} ms ({row.calls} calls)</text>")
    return _svg(_LABEL_W + bar_w + 400, 8 + len(rows) * _ROW_H, title, body)
