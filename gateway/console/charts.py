"""Bar charts drawn on the server: the geometry of an inline SVG (templates/macros.html draws it).

Each chart is a title, its series (name and colour) and groups (a label and one value per
series); bars of a group stand side by side. The same numbers are always shown in a table next
to the chart, so the chart adds nothing a screen reader would miss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Colours with at least 3:1 contrast against the white background (WCAG 1.4.11, graphics).
PALETTE = ("#1f5fa8", "#b3261e", "#6b4c00", "#0b6e4f", "#6a3d9a")
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 220, 48, 36, 12


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    label: str  # "<group>: <series> <value>", the bar's tooltip


@dataclass
class Chart:
    title: str
    series: list[tuple[str, str]]  # (name, colour)
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # (x, label) under the groups
    maximum: float = 0
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - PAD_BOTTOM
    left: float = PAD_LEFT

    @property
    def empty(self) -> bool:
        return not self.bars


def bars(title: str, series: list[str], groups: list[tuple[str, list[float]]], max_ticks: int = 8) -> Chart:
    chart = Chart(title, [(name, PALETTE[i % len(PALETTE)]) for i, name in enumerate(series)])
    chart.maximum = max((v for _, values in groups for v in values), default=0)
    if not chart.maximum:  # nothing to draw: the page says so instead
        return chart
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / len(groups)
    bar_w = min(48.0, max(1.0, slot * 0.8 / len(series)))
    every = max(1, -(-len(groups) // max_ticks))
    for g, (label, values) in enumerate(groups):
        x0 = PAD_LEFT + g * slot + slot * 0.1
        for s, value in enumerate(values):
            h = plot_h * (value / chart.maximum)
            chart.bars.append(Bar(x=round(x0 + s * bar_w, 2), y=round(chart.baseline - h, 2), width=round(bar_w, 2),
                                  height=round(h, 2), colour=chart.series[s][1],
                                  label=f"{label}: {series[s]} {_number(value)}"))
        if g % every == 0:
            chart.ticks.append((round(PAD_LEFT + g * slot + slot / 2, 2), label))
    return chart


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
