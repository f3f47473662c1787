"""Charts as SVG rendered on the server: runs by outcome over the last 24 hours and 7
days, and lateness and duration over time. No script and no library: a chart is a
string of markup, escaped here, with a `<title>` on every mark (the browser shows it
on hover) and the same figures in a table beside it for screen readers.

Buckets are counted back from `now` (the last hour, the hour before ...), so they do
not depend on any time zone.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

from api.ui.reads import lateness_seconds
from engine.model import Execution, Status

#: outcome groups, in stacking order, with their CSS class (colours live in ui.css)
OUTCOMES: tuple[tuple[str, frozenset[Status]], ...] = (
    ("completed", frozenset({Status.COMPLETED})),
    ("failed", frozenset({Status.FAILED, Status.TIMEOUT, Status.ABANDONED})),
    ("not run", frozenset({Status.MISSED, Status.SKIPPED, Status.CANCELLED})),
    ("active", frozenset({Status.SCHEDULED, Status.QUEUED, Status.RUNNING})),
)
WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 70, 8, 10, 26


@dataclass(frozen=True, slots=True)
class Bucket:
    label: str  # "3 h ago"
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def outcome_of(status: Status) -> str:
    for name, members in OUTCOMES:
        if status in members:
            return name
    return "not run"


def buckets(
    executions: Sequence[Execution], now: datetime, size: timedelta, count: int, unit: str
) -> list[Bucket]:
    """`count` buckets of `size` ending at `now`, oldest first, counting executions by
    outcome of their creation time."""
    grid = [{name: 0 for name, _ in OUTCOMES} for _ in range(count)]
    start = now - size * count
    for e in executions:
        if start <= e.created_at <= now:
            index = min(count - 1, int((e.created_at - start) / size))
            grid[index][outcome_of(e.status)] += 1
    labels = [f"{count - i} {unit} ago" if i < count - 1 else f"last {unit}" for i in range(count)]
    return [Bucket(label, counts) for label, counts in zip(labels, grid, strict=True)]


def outcome_chart(title: str, data: Sequence[Bucket]) -> Markup:
    """Stacked bars, one per bucket."""
    top = max((b.total for b in data), default=0)
    scale = _nice(top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(data), 1)
    marks: list[str] = []
    for i, bucket in enumerate(data):
        y = float(TOP + plot_h)
        for name, _ in OUTCOMES:
            n = bucket.counts[name]
            if not n:
                continue
            h = plot_h * n / scale
            y -= h
            tip = f"{bucket.label}: {n} {name}"
            marks.append(
                f'<rect class="o-{_css(name)}" x="{LEFT + i * slot + 1:.1f}" y="{y:.1f}" '
                f'width="{max(slot - 2, 1):.1f}" height="{h:.1f}"><title>{escape(tip)}</title></rect>'
            )
    step = max(1, len(data) // 6)
    labels = [
        _text(LEFT + (i + 0.5) * slot, HEIGHT - 8, b.label, "middle")
        for i, b in enumerate(data)
        if (len(data) - 1 - i) % step == 0
    ]
    summary = ", ".join(f"{sum(b.counts[name] for b in data)} {name}" for name, _ in OUTCOMES)
    legend = "".join(
        f'<li><span class="swatch o-{_css(name)}" aria-hidden="true"></span>{escape(name)}</li>'
        for name, _ in OUTCOMES
    )
    rows = "".join(
        f"<tr><th scope='row'>{escape(b.label)}</th>"
        + "".join(f"<td>{b.counts[name]}</td>" for name, _ in OUTCOMES)
        + "</tr>"
        for b in data
    )
    head = "".join(f"<th scope='col'>{escape(name)}</th>" for name, _ in OUTCOMES)
    return Markup(
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}: {escape(summary)}">'
        f"{_axes(scale, '')}{''.join(marks)}{''.join(labels)}</svg>"
        f'<ul class="legend">{legend}</ul>'
        f"<details><summary>Figures</summary><div class='table-wrap'><table>"
        f"<thead><tr><th scope='col'>period</th>{head}</tr></thead><tbody>{rows}</tbody>"
        f"</table></div></details></figure>"
    )


def series(executions: Sequence[Execution], what: str) -> list[tuple[datetime, float]]:
    """(when, seconds) points, oldest first: `lateness` of scheduled runs that started,
    or `duration` of runs that finished."""
    points: list[tuple[datetime, float]] = []
    for e in executions:
        if what == "lateness":
            value = lateness_seconds(e)
            when = e.scheduled_for
        else:
            value = e.duration_seconds
            when = e.started_at
        if value is not None and when is not None:
            points.append((when, value))
    points.sort(key=lambda p: p[0])
    return points


def time_chart(
    title: str, points: Sequence[tuple[datetime, float]], now: datetime, span: timedelta
) -> Markup:
    """Dots (and a thin line through them) of seconds over the last `span`."""
    start = now - span
    shown = [(w, v) for w, v in points if start <= w <= now]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max((max(v, 0.0) for _, v in shown), default=0.0)
    scale = _nice(top)

    def xy(when: datetime, value: float) -> tuple[float, float]:
        x = LEFT + plot_w * ((when - start) / span)
        y = TOP + plot_h * (1 - max(value, 0.0) / scale)
        return x, y

    coords = [xy(w, v) for w, v in shown]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>{escape(_ago(now - w))}: '
        f"{v:.3f} s</title></circle>"
        for (x, y), (w, v) in zip(coords, shown, strict=True)
    )
    line = f'<polyline class="line" points="{path}"/>' if len(coords) > 1 else ""
    labels = [
        _text(LEFT, HEIGHT - 8, _ago(span), "start"),
        _text(LEFT + plot_w / 2, HEIGHT - 8, _ago(span / 2), "middle"),
        _text(WIDTH - RIGHT, HEIGHT - 8, "now", "end"),
    ]
    if shown:
        values = [v for _, v in shown]
        summary = (
            f"{len(values)} run{'s' if len(values) != 1 else ''}, "
            f"median {statistics.median(values):.3f} s, "
            f"max {max(values):.3f} s"
        )
    else:
        summary = "no runs in this period"
        labels.append(_text(LEFT + plot_w / 2, TOP + plot_h / 2, summary, "middle"))
    return Markup(
        f'<figure class="chart"><figcaption>{escape(title)} <small>({escape(summary)})</small>'
        f'</figcaption><svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}: {escape(summary)}">'
        f"{_axes(scale, ' s')}{line}{dots}{''.join(labels)}</svg></figure>"
    )


def _axes(scale: float, unit: str) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    out = [
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}"/>'
    ]
    for fraction in (0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        out.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
        )
        out.append(_text(LEFT - 4, y + 4, f"{_num(scale * fraction)}{unit}", "end"))
    out.append(_text(LEFT - 4, TOP + plot_h + 4, f"0{unit}", "end"))
    return "".join(out)


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'


def _nice(top: float) -> float:
    """A round axis maximum at or above `top` (1, 2, 5 x 10^n); 1 for an empty chart."""
    if top <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(top))) / 10 if top >= 1 else 0.001
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude >= top:
                return factor * magnitude
        magnitude *= 10


def _num(value: float) -> str:
    return f"{value:g}"


def _ago(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} d ago"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 60:.0f} min ago"


def _css(name: str) -> str:
    return name.replace(" ", "-")
