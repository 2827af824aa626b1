"""Chart geometry for the mentor pages, drawn as server-side SVG by the templates.

No JavaScript and no external library: the pages run under ``default-src 'self'`` and
``style-src 'self'`` (no inline styles), so shapes use SVG presentation attributes and CSS
classes from ``static/context/context.css``. Coordinates are in a fixed viewBox; CSS scales the
SVG to the width of the screen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    value: float


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    path: str
    points: list[Point]
    grid: list[tuple[float, str]]       # (y, label) for 0, 25, 50, 75, 100
    x_labels: list[tuple[float, str, str]]   # (x, label, text-anchor)

    @property
    def empty(self) -> bool:
        return not self.points


@dataclass(frozen=True)
class Bar:
    y: float
    width: float
    label: str
    value: float | None
    value_x: float
    css: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]
    grid: list[tuple[float, str]]       # (x, label)

    @property
    def empty(self) -> bool:
        return not any(b.value is not None for b in self.bars)


def line_chart(series: list[tuple[str, float | None]], *, width: int = 640,
               height: int = 240) -> LineChart:
    """A 0-100 line through the non-null values of ``series`` ((label, value) in time order)."""
    left, right, top, bottom = 40, width - 16, 16, height - 32
    values = [(label, value) for label, value in series if value is not None]
    step = (right - left) / max(1, len(values) - 1)
    points = []
    for i, (label, value) in enumerate(values):
        x = left + (i * step if len(values) > 1 else (right - left) / 2)
        y = bottom - (bottom - top) * max(0.0, min(100.0, value)) / 100
        points.append(Point(round(x, 1), round(y, 1), label, value))
    path = " ".join(f"{'M' if i == 0 else 'L'}{p.x},{p.y}" for i, p in enumerate(points))
    grid = [(round(bottom - (bottom - top) * v / 100, 1), str(v)) for v in (0, 25, 50, 75, 100)]
    every = max(1, len(points) // 6)
    shown = [i for i in range(len(points)) if i % every == 0 or i == len(points) - 1]
    x_labels = [(points[i].x, points[i].label,
                 "start" if i == 0 and len(points) > 1 else
                 "end" if i == len(points) - 1 and len(points) > 1 else "middle")
                for i in shown]
    return LineChart(width, height, left, right, top, bottom, path, points, grid, x_labels)


def bar_chart(items: list[tuple[str, float | None, str]], *, width: int = 640,
              maximum: float = 100.0, label_width: int = 130, bar_height: int = 22) -> BarChart:
    """Horizontal bars: (label, value, css class) each, scaled to ``maximum``."""
    gap = 10
    plot = width - label_width - 56
    bars = []
    for i, (label, value, css) in enumerate(items):
        y = 8 + i * (bar_height + gap)
        w = 0.0 if value is None else plot * max(0.0, min(maximum, value)) / maximum
        bars.append(Bar(y, round(w, 1), label, value, round(label_width + w + 6, 1), css))
    height = 8 + len(items) * (bar_height + gap) + 16
    if maximum == 100.0:
        values = [0.0, 25.0, 50.0, 75.0, 100.0]
    else:  # counts: whole-number ticks only
        step = max(1, math.ceil(maximum / 4))
        values = [float(v) for v in range(0, int(maximum) + 1, step)]
    grid = [(round(label_width + plot * v / maximum, 1), f"{v:g}") for v in values]
    return BarChart(width, height, label_width, bar_height, bars, grid)
