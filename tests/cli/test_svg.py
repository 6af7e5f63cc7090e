"""`plan -o svg`: one marker per candidate, feasible and rejected told apart, the chosen plan ringed, strings escaped;
and, opened in headless Chromium, the pixels show what the markup says."""

import math
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from modelplane.api.plan import PlanResult
from modelplane.api.serving import Quantization
from modelplane.cli import app
from modelplane.cli.inputs import read_inventory
from modelplane.cli.svg import (
    CHOSEN,
    FEASIBLE,
    HALO_RADIUS,
    PLOT_HEIGHT,
    PLOT_LEFT,
    PLOT_WIDTH,
    REJECTED,
    log_axis,
    plan_svg,
)
from modelplane.planning.service import offers_for, plan_deployment
from tests.support import deployment, pool

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '</text><script>alert("x")</script><!-- & ]]> \x01'


def example_results() -> list[PlanResult]:
    inventory = read_inventory([EXAMPLES / "deployments", EXAMPLES / "pools"])
    offers = offers_for(inventory.pools)
    return [plan_deployment(md, offers) for md in inventory.deployments]


def markers(panel: ET.Element) -> list[tuple[set[str], float, float, ET.Element]]:
    """Each candidate marker in drawing order: its classes and its centre."""
    found = []
    for group in panel.iter(f"{SVG}g"):
        classes = set(group.get("class", "").split())
        if "candidate" in classes:
            match = re.fullmatch(r"translate\(([-\d.]+) ([-\d.]+)\)", group.get("transform", ""))
            assert match, group.get("transform")
            found.append((classes, float(match[1]), float(match[2]), group))
    return found


def panels(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root.findall(f"{SVG}g[@class='deployment']")


@pytest.mark.parametrize(
    ("values", "labels"),
    [
        ([26, 6500], ["20", "50", "100", "200", "500", "1,000", "2,000", "5,000", "10,000"]),
        ([135, 1593], ["100", "200", "500", "1,000", "2,000"]),
        ([1.5, 60.8], ["1", "2", "5", "10", "20", "50", "100"]),
        ([0.3, 0.4], ["0.2", "0.5"]),
        ([5, 5], ["2", "5", "10"]),
        ([3, 40_000], ["2", "10", "100", "1,000", "10,000", "50,000"]),
    ],
)
def test_log_axis_round_ends_and_ticks(values: list[float], labels: list[str]) -> None:
    """The ends are round values beyond the data; past three decades only powers of ten are labelled."""
    axis = log_axis(values)
    assert [label for _, label in axis.ticks] == labels
    assert axis.low < min(values)
    assert max(values) < axis.high
    assert axis.fraction(axis.low) == 0
    assert axis.fraction(axis.high) == pytest.approx(1)


def test_one_marker_per_candidate_feasible_and_rejected_counted() -> None:
    results = example_results()
    assert any(not result.feasible for result in results), "the examples include an infeasible deployment"
    for result, panel in zip(results, panels(plan_svg(results)), strict=True):
        drawn = markers(panel)
        assert len(drawn) == len(result.candidates)
        assert sum("feasible" in classes for classes, *_ in drawn) == sum(c.feasible for c in result.candidates)
        assert sum("rejected" in classes for classes, *_ in drawn) == sum(not c.feasible for c in result.candidates)
        tooltips = sorted(group.findtext(f"{SVG}title", "").split(": ", 1)[1].split(" ")[0] for *_, group in drawn)
        assert tooltips == sorted(candidate.pool for candidate in result.candidates)


def test_chosen_plan_ringed_once() -> None:
    results = example_results()
    for result, panel in zip(results, panels(plan_svg(results)), strict=True):
        chosen = [(classes, group) for classes, _, _, group in markers(panel) if "chosen" in classes]
        if result.plan is None:
            assert chosen == []
            continue
        [(classes, group)] = chosen
        assert "feasible" in classes
        title = group.findtext(f"{SVG}title", "")
        assert title.startswith(f"chosen: {result.plan.pool} ({result.plan.gpu}) TP{result.plan.tensor_parallel}×")
        halo = group.find(f"{SVG}circle[@class='halo']")
        assert halo is not None
        assert halo.get("stroke") == CHOSEN


def test_slower_is_right_and_dearer_is_higher() -> None:
    """Plotted candidates keep the order of their numbers on both (log) axes and stay inside the frame: x is the
    inter-token latency, y the cost per million tokens."""
    results = example_results()
    checked = 0
    for result, panel in zip(results, panels(plan_svg(results)), strict=True):
        frame = panel.find(f"{SVG}rect[@class='plot-area']")
        assert frame is not None
        top = float(frame.get("y", "0"))
        by_pool_shape = {(c.pool, c.tensor_parallel, c.pipeline_parallel, c.quantization): c for c in result.candidates}
        plotted = []
        for _, x, y, group in markers(panel):
            if y > top + PLOT_HEIGHT:
                continue
            assert PLOT_LEFT < x < PLOT_LEFT + PLOT_WIDTH
            assert top < y
            title = group.findtext(f"{SVG}title", "")
            match = re.match(r"\w+: (\S+) \(\S+\) TP(\d+)×PP(\d+) (\S+),", title)
            assert match, title
            candidate = by_pool_shape[(match[1], int(match[2]), int(match[3]), Quantization(match[4]))]
            estimates = candidate.estimates
            assert estimates is not None
            assert estimates.cost_per_million_tokens is not None
            assert estimates.inter_token_latency_seconds is not None
            plotted.append((estimates.inter_token_latency_seconds, float(estimates.cost_per_million_tokens), x, y))
        for latency, cost, x, y in plotted:
            for other_latency, other_cost, other_x, other_y in plotted:
                if latency < other_latency:
                    assert x <= other_x
                if cost < other_cost:
                    assert y >= other_y
        checked += len(plotted)
    assert checked > 50


def test_candidates_without_cost_are_listed_below_the_plot() -> None:
    offers = offers_for([pool("priced", "L40S-48GB", cost="1.00"), pool("unpriced", "H100-SXM-80GB", cost=None)])
    result = plan_deployment(deployment(), offers)
    [panel] = panels(plan_svg([result]))
    frame = panel.find(f"{SVG}rect[@class='plot-area']")
    assert frame is not None
    below = float(frame.get("y", "0")) + PLOT_HEIGHT
    drawn = markers(panel)
    assert len(drawn) == len(result.candidates)
    unpriced = [y for _, _, y, group in drawn if ": unpriced (" in group.findtext(f"{SVG}title", "")]
    assert unpriced
    assert all(y > below for y in unpriced)
    assert all("no cost" in group.findtext(f"{SVG}title", "") for _, _, y, group in drawn if y > below)


def test_nothing_to_plot_still_draws() -> None:
    result = plan_deployment(deployment(quantization="int8"), offers_for([pool("a", "L4-24GB")]))
    assert not result.feasible
    [panel] = panels(plan_svg([result]))
    assert len(markers(panel)) == len(result.candidates)
    assert ET.fromstring(plan_svg([])).findall(f"{SVG}g") == []


def test_user_strings_are_escaped() -> None:
    [result] = [r for r in example_results() if r.name == "qwen-7b-trt"]
    rejected = next(candidate for candidate in result.candidates if candidate.reasons)
    reason = rejected.reasons[0].model_copy(update={"message": HOSTILE})
    hostile = result.model_copy(update={
        "model": HOSTILE, "name": HOSTILE,
        "candidates": [c.model_copy(update={"reasons": [reason]}) if c is rejected else c for c in result.candidates],
    })  # fmt: skip
    svg = plan_svg([hostile])
    assert "<script" not in svg
    root = ET.fromstring(svg)
    assert {element.tag.removeprefix(SVG) for element in root.iter()} <= {"svg", "title", "rect", "g", "text", "line",
                                                                          "circle", "path"}  # fmt: skip
    survived = HOSTILE.replace("\x01", "\ufffd")
    texts = ["".join(element.itertext()) for element in root.iter()]
    assert any(text == survived for text in texts), "the model name is shown as written"
    assert any(survived in text for text in texts if text.startswith("rejected: ")), "and the reason message"


def test_cli_svg_output_and_completion() -> None:
    result = CliRunner().invoke(app, ["plan", str(EXAMPLES / "deployments"), "--pools", str(EXAMPLES / "pools"),
                                      "-o", "svg"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert len(panels(result.stdout)) == len(example_results())
    completion = {"_MODELPLANE_COMPLETE": "complete_bash", "COMP_WORDS": "modelplane plan x -o ", "COMP_CWORD": "4"}
    completed = CliRunner().invoke(app, [], env=completion, prog_name="modelplane")
    assert "svg" in completed.stdout.split(), "bash completion offers it after -o"


# -- what a person sees ------------------------------------------------------------------------


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def near(image: Image.Image, x: float, y: float, colour: str, tolerance: int = 40) -> bool:
    """Some pixel of the 3×3 around (x, y) has this colour, allowing for antialiasing."""
    want = rgb(colour)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            pixel = image.getpixel((int(x) + dx, int(y) + dy))
            assert isinstance(pixel, tuple)
            if all(abs(have - wanted) <= tolerance for have, wanted in zip(pixel[:3], want, strict=True)):
                return True
    return False


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: make test installs it (hack/ensure-chromium.sh) before pytest")
    pytest.skip("chromium is not installed (apt-get install chromium); CI fails instead of skipping")


def screenshot(svg: Path, width: int, height: int, directory: Path) -> Image.Image:
    png = directory / "plan.png"
    subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--user-data-dir={directory / 'profile'}", f"--screenshot={png}",
         f"--window-size={width},{height}", svg.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return Image.open(png).convert("RGB")


def test_screenshot_shows_the_markers(tmp_path: Path) -> None:
    svg = plan_svg(example_results())
    root = ET.fromstring(svg)
    width, height = int(root.get("width", "0")), int(root.get("height", "0"))
    path = tmp_path / "plan.svg"
    path.write_text(svg)
    image = screenshot(path, width, height, tmp_path)
    assert image.size == (width, height)
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is not None
    white = sum(count for count, colour in colours if colour == (255, 255, 255))
    assert 0.5 < white / (width * height) < 0.98, "mostly white paper with a drawing on it"
    assert any(isinstance(colour, tuple) and sum(colour) < 150 for _, colour in colours), "dark text"

    drawn = [marker for panel in root.findall(f"{SVG}g[@class='deployment']") for marker in markers(panel)]
    seen = {"feasible": 0, "rejected": 0}
    for index, (classes, x, y, _) in enumerate(drawn):
        covered = any(math.dist((x, y), (later_x, later_y)) < HALO_RADIUS + 3 for _, later_x, later_y, _ in
                      drawn[index + 1:])  # fmt: skip
        if covered and "chosen" not in classes:
            continue
        kind = "feasible" if "feasible" in classes else "rejected"
        assert near(image, x, y, FEASIBLE if kind == "feasible" else REJECTED), (kind, x, y)
        seen[kind] += 1
        if "chosen" in classes:
            ring = [(x + HALO_RADIUS, y), (x - HALO_RADIUS, y), (x, y + HALO_RADIUS), (x, y - HALO_RADIUS)]
            assert all(near(image, *point, CHOSEN) for point in ring), (x, y)
    assert seen["feasible"] > 40
    assert seen["rejected"] > 20


def test_the_slo_is_a_vertical_line_at_its_latency() -> None:
    pools = offers_for(
        [pool("h100", "H100-SXM-80GB", 8, 2, cost="2.00"), pool("a100", "A100-SXM-80GB", 8, 2, cost="1.2")]
    )
    md = deployment(quantization="bf16", maxModelLen=4096, workload={"inputTokens": 1000, "outputTokens": 200},
                    slo={"interTokenLatency": "40ms"})  # fmt: skip
    (panel,) = panels(plan_svg([plan_deployment(md, pools)]))
    lines = [line for line in panel.iter(f"{SVG}line") if line.get("class") == "slo"]
    assert len(lines) == 1
    assert lines[0].get("x1") == lines[0].get("x2")
    assert "SLO 40 ms" in [text.text for text in panel.iter(f"{SVG}text")]
    (plain,) = panels(plan_svg([plan_deployment(deployment(quantization="bf16"), pools)]))
    assert not [line for line in plain.iter(f"{SVG}line") if line.get("class") == "slo"]
