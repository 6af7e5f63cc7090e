"""`modelplane plan -o svg`: every candidate as a point, cost per million tokens against inter-token latency.

A picture for people who would rather look than read: which shapes are cheap and fast, which were
rejected, where the chosen plan sits among them and, as a vertical line, the SLO's inter-token latency.
Both axes are logarithmic because candidates span
orders of magnitude (one GPU to several nodes), and a linear scale piles the small ones into a corner.
The SVG is self-contained (no scripts, fonts or images to fetch), so it can be attached to a pull request
or opened from disk. It is built with ElementTree, which escapes every string: model names and reason
messages come from users.
"""

import math
import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple
from xml.etree.ElementTree import Element, SubElement, tostring

from modelplane.api.plan import Candidate, Plan, PlanResult

FEASIBLE = "#1a9850"
REJECTED = "#7f8fa6"
CHOSEN = "#f28e2b"
INFEASIBLE = "#b2182b"
INK = "#222222"
GRID = "#e6e6e6"

WIDTH = 900
PLOT_LEFT = 80
PLOT_WIDTH = 560
PLOT_HEIGHT = 300
LEGEND_LEFT = PLOT_LEFT + PLOT_WIDTH + 30
HEADER_HEIGHT = 84
STRIP_PITCH = 18
STRIP_PER_ROW = PLOT_WIDTH // STRIP_PITCH
HALO_RADIUS = 10
MARGIN = 1.15  # axis ends lie at least this factor beyond the extreme points, so none sits on the frame

# XML 1.0 cannot carry these at all, escaped or not; they are replaced rather than make the SVG unreadable.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Point(NamedTuple):
    latency_ms: float
    cost_per_million: float


class LogAxis(NamedTuple):
    """An axis from `low` to `high` on a log scale, with 1-2-5 ticks (only powers of ten when it spans many)."""

    low: float
    high: float
    ticks: list[tuple[float, str]]

    def fraction(self, value: float) -> float:
        return math.log(value / self.low) / math.log(self.high / self.low)


def log_axis(values: Sequence[float]) -> LogAxis:
    """From a round value below the smallest to one above the largest, with a margin so no point sits on the frame."""
    smallest, largest = min(values) / MARGIN, max(values) * MARGIN
    steps = [(multiple * 10.0**exponent, exponent)
             for exponent in range(math.floor(math.log10(smallest)) - 1, math.ceil(math.log10(largest)) + 1)
             for multiple in (1, 2, 5)]  # fmt: skip
    low = max(value for value, _ in steps if value <= smallest)
    high = min(value for value, _ in steps if value >= largest)
    sparse = high / low > 10**3
    ticks = [(value, f"{value:,.{max(0, -exponent)}f}") for value, exponent in steps
             if low <= value <= high and (not sparse or value in (low, high) or value == 10.0**exponent)]  # fmt: skip
    return LogAxis(low, high, ticks)


def _clean(content: str) -> str:
    return _NOT_XML.sub("\ufffd", content)


def _text(parent: Element, content: str, x: float, y: float, **attributes: str) -> None:
    SubElement(parent, "text", {"x": f"{x:g}", "y": f"{y:g}", **attributes}).text = _clean(content)


def _point(candidate: Candidate) -> Point | None:
    """Both numbers, positive: no latency when memory does not fit, no cost when the pool has no price."""
    estimates = candidate.estimates
    if estimates is None or estimates.cost_per_million_tokens is None or estimates.inter_token_latency_seconds is None:
        return None
    point = Point(estimates.inter_token_latency_seconds * 1000, float(Decimal(estimates.cost_per_million_tokens)))
    return point if min(point) > 0 else None


def _is_chosen(candidate: Candidate, plan: Plan | None) -> bool:
    """A plan names its candidate by pool, shape and quantization; the planner evaluates each of those once."""
    if plan is None:
        return False
    shape = (plan.pool, plan.tensor_parallel, plan.pipeline_parallel, plan.quantization)
    return (candidate.pool, candidate.tensor_parallel, candidate.pipeline_parallel, candidate.quantization) == shape


def _tooltip(candidate: Candidate, chosen: bool) -> str:
    verdict = "chosen" if chosen else "feasible" if candidate.feasible else "rejected"
    shape = f"TP{candidate.tensor_parallel}×PP{candidate.pipeline_parallel} {candidate.quantization}"
    lines = [f"{verdict}: {candidate.pool} ({candidate.gpu}) {shape}, {candidate.gpus_per_replica} GPU(s) per replica"]
    estimates = candidate.estimates
    if estimates is None:
        lines.append("no throughput estimate")
    else:
        cost = f"${estimates.cost_per_hour}/h" if estimates.cost_per_hour else "no cost (pool has no price)"
        lines.append(f"{estimates.decode_tokens_per_second:,} tok/s, {cost}")
        if estimates.inter_token_latency_seconds is not None:
            per_million = f"${estimates.cost_per_million_tokens}/Mtok" if estimates.cost_per_million_tokens else "-"
            lines.append(f"ITL {estimates.inter_token_latency_seconds * 1000:.1f} ms, {per_million}")
    lines += [f"{reason.code.value}: {reason.message}" for reason in candidate.reasons]
    return "\n".join(lines)


def _marker(parent: Element, candidate: Candidate, chosen: bool, x: float, y: float) -> None:
    kind = "feasible" if candidate.feasible else "rejected"
    group = SubElement(parent, "g", {"class": f"candidate {kind}" + (" chosen" if chosen else "")},
                       transform=f"translate({x:.1f} {y:.1f})")  # fmt: skip
    SubElement(group, "title").text = _clean(_tooltip(candidate, chosen))
    if candidate.feasible:
        SubElement(group, "circle", {"stroke-width": "1"}, r="5", fill=FEASIBLE, stroke="#ffffff")
    else:
        SubElement(group, "path", {"stroke-width": "2.5"}, d="M-4 -4L4 4M-4 4L4 -4", stroke=REJECTED)
    if chosen:
        SubElement(group, "circle", {"class": "halo", "stroke-width": "3"}, r=str(HALO_RADIUS), fill="none",
                   stroke=CHOSEN)  # fmt: skip


def _summary(result: PlanResult) -> str:
    plan = result.plan
    if plan is None:
        return "infeasible: " + ("; ".join(reason.code.value for reason in result.reasons) or "no candidate fits")
    return (f"chosen: {plan.pool} ({plan.gpu}) TP{plan.tensor_parallel}×PP{plan.pipeline_parallel} "
            f"{plan.quantization}, {plan.gpus_per_replica} GPU(s) × {plan.replicas} replica(s), "
            f"{plan.estimates.decode_tokens_per_second:,} tok/s, ${plan.estimates.cost_per_hour or '-'}/h")  # fmt: skip


def _axes(
    panel: Element, top: float, points: Sequence[Point], target_ms: float | None
) -> tuple[LogAxis, LogAxis] | None:
    """Frame, gridlines, tick labels, axis titles and the SLO line; the axes, or None when there is nothing to plot."""
    bottom = top + PLOT_HEIGHT
    frame = {"x": str(PLOT_LEFT), "y": f"{top:g}", "width": str(PLOT_WIDTH), "height": str(PLOT_HEIGHT)}
    SubElement(panel, "rect", {"class": "plot-area", **frame}, fill="#ffffff")
    axes = None
    if points:
        latencies = [p.latency_ms for p in points] + ([target_ms] if target_ms else [])
        axes = log_axis(latencies), log_axis([p.cost_per_million for p in points])
        for value, label in axes[0].ticks:
            x = f"{PLOT_LEFT + PLOT_WIDTH * axes[0].fraction(value):.1f}"
            SubElement(panel, "line", x1=x, x2=x, y1=f"{top:g}", y2=f"{bottom:g}", stroke=GRID)
            _text(panel, label, float(x), bottom + 16, **{"text-anchor": "middle"})
        for value, label in axes[1].ticks:
            y = f"{bottom - PLOT_HEIGHT * axes[1].fraction(value):.1f}"
            SubElement(panel, "line", x1=str(PLOT_LEFT), x2=str(PLOT_LEFT + PLOT_WIDTH), y1=y, y2=y, stroke=GRID)
            _text(panel, label, PLOT_LEFT - 6, float(y) + 4, **{"text-anchor": "end"})
        if target_ms:
            x = f"{PLOT_LEFT + PLOT_WIDTH * axes[0].fraction(target_ms):.1f}"
            SubElement(panel, "line", {"class": "slo", "stroke-dasharray": "6 4", "stroke-width": "2"}, x1=x, x2=x,
                       y1=f"{top:g}", y2=f"{bottom:g}", stroke=INFEASIBLE)  # fmt: skip
            _text(panel, f"SLO {target_ms:g} ms", float(x) + 4, top + 14, fill=INFEASIBLE)
    else:
        _text(panel, "no candidate has both a latency and a cost estimate", PLOT_LEFT + PLOT_WIDTH / 2,
              top + PLOT_HEIGHT / 2, fill=REJECTED, **{"text-anchor": "middle"})  # fmt: skip
    SubElement(panel, "rect", frame, fill="none", stroke=INK)
    _text(panel, "estimated inter-token latency at the operating point, ms (log scale)",
          PLOT_LEFT + PLOT_WIDTH / 2, bottom + 36, **{"text-anchor": "middle"})  # fmt: skip
    _text(panel, "cost per million output tokens, $ (log scale)", 0, 0, **{"text-anchor": "middle",
          "transform": f"translate({PLOT_LEFT - 52} {top + PLOT_HEIGHT / 2}) rotate(-90)"})  # fmt: skip
    return axes


def _legend(panel: Element, top: float, result: PlanResult) -> None:
    feasible = sum(candidate.feasible for candidate in result.candidates)
    legend = SubElement(panel, "g", {"class": "legend"})
    x = LEGEND_LEFT + 8
    SubElement(legend, "circle", cx=str(x), cy=f"{top + 14:g}", r="5", fill=FEASIBLE)
    _text(legend, f"feasible ({feasible})", x + 16, top + 18)
    SubElement(legend, "path", {"stroke-width": "2.5"}, d=f"M{x - 4} {top + 32:g}l8 8m-8 0l8 -8", stroke=REJECTED)
    _text(legend, f"rejected ({len(result.candidates) - feasible})", x + 16, top + 40)
    SubElement(legend, "circle", {"stroke-width": "3"}, cx=str(x), cy=f"{top + 58:g}", r=str(HALO_RADIUS - 2),
               fill="none", stroke=CHOSEN)  # fmt: skip
    _text(legend, "chosen plan", x + 16, top + 62)
    codes = Counter(reason.code.value for candidate in result.candidates for reason in candidate.reasons)
    if codes:
        _text(legend, "why rejected:", LEGEND_LEFT, top + 96, **{"font-weight": "bold"})
    for row, (code, count) in enumerate(codes.most_common()):
        _text(legend, f"{code} × {count}", LEGEND_LEFT, top + 114 + 16 * row, **{"font-size": "11"})


def _panel(svg: Element, result: PlanResult, top: float) -> float:
    """One deployment: header, scatter plot, then a strip of the candidates without numbers; returns its bottom."""
    panel = SubElement(svg, "g", {"class": "deployment"})
    _text(panel, f"{result.namespace}/{result.name}", PLOT_LEFT, top + 24, **{"font-size": "16", "font-weight": "bold"})
    _text(panel, result.model, PLOT_LEFT, top + 44, **{"font-size": "13"})
    _text(panel, _summary(result), PLOT_LEFT, top + 64, fill=INK if result.feasible else INFEASIBLE)
    plot_top = top + HEADER_HEIGHT
    placed = [(candidate, _point(candidate), _is_chosen(candidate, result.plan)) for candidate in result.candidates]
    target = result.inter_token_latency_target_seconds
    axes = _axes(panel, plot_top, [point for _, point, _ in placed if point is not None],
                 None if target is None else target * 1000)  # fmt: skip
    _legend(panel, plot_top, result)
    strip_top = plot_top + PLOT_HEIGHT + 64
    unplotted = sum(point is None for _, point, _ in placed)
    if unplotted:
        _text(panel, f"not plotted, no latency or cost estimate ({unplotted}):", PLOT_LEFT, strip_top)
    strip_index = 0
    # Rejected first, chosen last: where markers overlap, the feasible ones and the chosen halo stay visible.
    for candidate, point, chosen in sorted(placed, key=lambda item: (item[0].feasible, item[2])):
        if point is not None and axes is not None:
            x = PLOT_LEFT + PLOT_WIDTH * axes[0].fraction(point.latency_ms)
            y = plot_top + PLOT_HEIGHT * (1 - axes[1].fraction(point.cost_per_million))
        else:
            row, column = divmod(strip_index, STRIP_PER_ROW)
            x, y = PLOT_LEFT + 8 + STRIP_PITCH * column, strip_top + 16 + STRIP_PITCH * row
            strip_index += 1
        _marker(panel, candidate, chosen, x, y)
    rows = math.ceil(unplotted / STRIP_PER_ROW)
    return strip_top + (STRIP_PITCH * rows + 16 if rows else -24)


def plan_svg(results: Sequence[PlanResult]) -> str:
    """One panel per deployment, stacked, in a single standalone SVG document."""
    svg = Element("svg", {"font-family": "DejaVu Sans, Helvetica, Arial, sans-serif", "font-size": "12"},
                  xmlns="http://www.w3.org/2000/svg", width=str(WIDTH), role="img")  # fmt: skip
    models = ", ".join(result.model for result in results) or "no ModelDeployments"
    SubElement(svg, "title").text = _clean(f"modelplane plan: {models}")
    SubElement(svg, "rect", width="100%", height="100%", fill="#ffffff")
    bottom = 0.0
    for result in results:
        bottom = _panel(svg, result, bottom) + 24
    if not results:
        _text(svg, "no ModelDeployments to plan", PLOT_LEFT, 32, **{"font-size": "16"})
        bottom = 56
    height = str(math.ceil(bottom))
    svg.set("height", height)
    svg.set("viewBox", f"0 0 {WIDTH} {height}")
    return tostring(svg, encoding="unicode") + "\n"
