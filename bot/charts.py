"""Daily spend charts as PNG, drawn with matplotlib's Agg backend off the event loop.

Rendering takes tens of milliseconds of CPU (a second or more for the first import), so it runs in
a worker thread; one chart at a time, because matplotlib's rc settings (used here for the font)
are process-global. Chinese labels need a font with CJK glyphs. The Docker image installs one
(fonts-wqy-microhei); where none is found, a chart asked for in Chinese is labelled in English
rather than drawn with empty boxes. Model names and numbers are ASCII either way.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from storage import MICRO_PER_YUANDIAN

log = logging.getLogger(__name__)

WIDTH_PX, HEIGHT_PX, DPI = 1000, 560, 100  # readable on a phone: ≥ 800 px wide

# Font families with CJK glyphs, in order of preference (Linux packages first, then macOS/Windows).
CJK_FONT_HINTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK JP",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "SimHei",
)


@dataclass(frozen=True)
class ModelSeries:
    model: str
    costs_micro: tuple[int, ...]  # one per day of the chart

    @property
    def total_micro(self) -> int:
        return sum(self.costs_micro)


@dataclass(frozen=True)
class DailyChart:
    """What a chart shows: the data only, so it can be checked without looking at pixels."""

    days: tuple[date, ...]  # consecutive UTC days, oldest first
    series: tuple[ModelSeries, ...]  # stacked, most expensive model first
    budget_micro: int | None = None  # the period's limit (None: unlimited, or everyone's chart)
    period_spent_micro: tuple[int | None, ...] = ()  # spent in the current period by each day's end

    @property
    def total_micro(self) -> int:
        return sum(series.total_micro for series in self.series)


@dataclass(frozen=True)
class ChartLabels:
    title: str
    daily_axis: str  # the bars: 元点 per day
    period_axis: str  # the right axis: spent in the period, and the budget
    period_spent: str
    budget: str
    no_data: str


def needs_cjk(labels: ChartLabels) -> bool:
    return any(ord(char) >= 0x2E80 for value in vars(labels).values() for char in value)


class ChartRenderer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cjk_font: str | None | bool = False  # False: not looked for yet

    async def render(self, chart: DailyChart, labels: ChartLabels, fallback: ChartLabels) -> bytes:
        """A PNG of WIDTH_PX × HEIGHT_PX; `fallback` (ASCII) is used when `labels` need a CJK font
        and there is none."""
        return await asyncio.to_thread(self._render, chart, labels, fallback)

    def _render(self, chart: DailyChart, labels: ChartLabels, fallback: ChartLabels) -> bytes:
        with self._lock:
            font = self._find_cjk_font()
            if font is None and needs_cjk(labels):
                labels = fallback
            if font is None and needs_cjk(labels):
                labels = _spelled_out(labels)
            return _draw(chart, labels, font)

    def _find_cjk_font(self) -> str | None:
        if self._cjk_font is False:
            from matplotlib import font_manager

            available = {entry.name for entry in font_manager.fontManager.ttflist}
            self._cjk_font = next((name for name in CJK_FONT_HINTS if name in available), None)
            if self._cjk_font is None:
                log.info("no font with CJK glyphs found: charts are labelled in English")
        return self._cjk_font  # type: ignore[return-value]


def _spelled_out(labels: ChartLabels) -> ChartLabels:
    """English labels without a CJK font: 元点 written in Latin letters."""
    return ChartLabels(**{name: value.replace("元点", "yuandian") for name, value in vars(labels).items()})


def _points(micro: int) -> float:
    # Floats only for drawing; every amount shown as text is formatted from the exact integers.
    return float(Decimal(micro) / MICRO_PER_YUANDIAN)


def _draw(chart: DailyChart, labels: ChartLabels, cjk_font: str | None) -> bytes:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    families = [cjk_font, "DejaVu Sans"] if cjk_font else ["DejaVu Sans"]
    with rc_context({"font.family": families, "axes.unicode_minus": False}):
        figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        positions = list(range(len(chart.days)))
        bottoms = [0.0] * len(chart.days)
        for series in chart.series:
            heights = [_points(cost) for cost in series.costs_micro]
            axes.bar(positions, heights, bottom=bottoms, label=series.model, width=0.8)
            bottoms = [low + high for low, high in zip(bottoms, heights, strict=True)]
        axes.set_title(labels.title)
        axes.set_ylabel(labels.daily_axis)
        step = max(1, len(chart.days) // 10)
        axes.set_xticks(positions[::step], [f"{day:%m-%d}" for day in chart.days[::step]])
        axes.set_xlim(-0.6, len(chart.days) - 0.4)
        axes.grid(axis="y", alpha=0.3)
        handles, names = axes.get_legend_handles_labels()
        if chart.budget_micro is not None and chart.period_spent_micro:
            right = axes.twinx()
            # NaN leaves a gap: the days before the period began have no "spent this period".
            spent = [float("nan") if value is None else _points(value) for value in chart.period_spent_micro]
            (line,) = right.plot(positions, spent, color="black", marker=".", label=labels.period_spent)
            budget = right.axhline(
                _points(chart.budget_micro), color="red", linestyle="--", label=labels.budget
            )
            top = max([_points(chart.budget_micro)] + [value for value in spent if value == value])
            right.set_ylim(0, top * 1.1 or 1)
            right.set_ylabel(labels.period_axis)
            handles += [line, budget]
            names += [labels.period_spent, labels.budget]
        if not chart.series:
            axes.text(0.5, 0.5, labels.no_data, transform=axes.transAxes, ha="center", va="center")
            axes.set_ylim(0, 1)
        if handles:
            axes.legend(handles, names, loc="upper left", fontsize="small")
        figure.tight_layout()  # arranges inside the figure; the size stays WIDTH_PX × HEIGHT_PX
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()
