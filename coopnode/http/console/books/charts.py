"""The books' charts as SVG drawn on the server: no script, no CDN, printable.

Two charts: a day's net sales by hour, a line per store; and meal-plan use day by day
through a term, from the closed days. Every text in them is the caller's (already
translated) and escaped here; numbers are integers of yen.
"""

from __future__ import annotations

from html import escape

from coopnode.domain.books import HOURS_PER_DAY

WIDTH_PX = 720
HEIGHT_PX = 320
_MARGIN_LEFT_PX = 80
_MARGIN_RIGHT_PX = 140
_MARGIN_Y_PX = 30
# Distinct for the eye and for the colour-blind (Okabe and Ito's palette).
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


def _frame(title: str, y_max: int, x_labels: list[str]) -> list[str]:
    plot_h = HEIGHT_PX - 2 * _MARGIN_Y_PX
    plot_w = WIDTH_PX - _MARGIN_LEFT_PX - _MARGIN_RIGHT_PX
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_PX}" height="{HEIGHT_PX}" '
        f'viewBox="0 0 {WIDTH_PX} {HEIGHT_PX}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{_MARGIN_LEFT_PX}" y="{_MARGIN_Y_PX}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#999"/>',
        f'<text x="{_MARGIN_LEFT_PX - 6}" y="{_MARGIN_Y_PX + 4}" text-anchor="end" '
        f'font-size="11">{y_max:,}</text>',
        f'<text x="{_MARGIN_LEFT_PX - 6}" y="{HEIGHT_PX - _MARGIN_Y_PX}" text-anchor="end" '
        'font-size="11">0</text>',
    ]
    step = max(1, len(x_labels) // 12)
    for index, label in enumerate(x_labels):
        if index % step == 0:
            x = _x(index, len(x_labels))
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT_PX - _MARGIN_Y_PX + 14}" text-anchor="middle" '
                f'font-size="10">{escape(label)}</text>'
            )
    return parts


def _x(index: int, count: int) -> float:
    plot_w = WIDTH_PX - _MARGIN_LEFT_PX - _MARGIN_RIGHT_PX
    return _MARGIN_LEFT_PX + plot_w * (index + 0.5) / max(count, 1)


def _y(value: int, y_max: int) -> float:
    plot_h = HEIGHT_PX - 2 * _MARGIN_Y_PX
    return HEIGHT_PX - _MARGIN_Y_PX - plot_h * max(value, 0) / max(y_max, 1)


def line_chart(title: str, x_labels: list[str], series: dict[str, list[int]]) -> str:
    """Lines of integer values over `x_labels`, one per named series, with a legend."""
    y_max = max((value for values in series.values() for value in values), default=0)
    parts = _frame(title, y_max, x_labels)
    for number, (name, values) in enumerate(series.items()):
        colour = _COLOURS[number % len(_COLOURS)]
        points = " ".join(
            f"{_x(index, len(values)):.1f},{_y(value, y_max):.1f}"
            for index, value in enumerate(values)
        )
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        legend_y = _MARGIN_Y_PX + 16 * number + 8
        legend_x = WIDTH_PX - _MARGIN_RIGHT_PX + 10
        parts.append(
            f'<rect x="{legend_x}" y="{legend_y - 8}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{legend_y + 1}" font-size="11">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def sales_by_hour(title: str, hourly_sales: dict[str, list[int]]) -> str:
    labels = [f"{hour:02d}" for hour in range(HOURS_PER_DAY)]
    return line_chart(title, labels, hourly_sales)


def meal_use(title: str, series_name: str, days: list[tuple[str, int]]) -> str:
    """Meal-plan use per day (ISO date, yen), through a term."""
    labels = [day[5:] for day, _ in days]
    return line_chart(title, labels, {series_name: [yen for _, yen in days]})
