"""Golden files: input CR -> expected manifests, for each runtime × single/multi-node × NVIDIA/AMD.

Regenerate after an intended change with `UPDATE_GOLDEN=1 .venv/bin/pytest tests/render/test_golden.py`
and review the diff like any other code change.
"""

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.api.documents import load_documents
from modelplane.cli.render import render_all, write_directory
from modelplane.planning.service import offers_for, plan_deployment

GOLDEN = Path(__file__).parent.parent / "golden"
CASES = sorted(path.name for path in GOLDEN.iterdir() if (path / "input.yaml").exists())


def render_case(case: str, target: Path) -> None:
    inventory = load_documents((GOLDEN / case / "input.yaml").read_text(), f"{case}/input.yaml")
    offers = offers_for(inventory.pools)
    pairs = [(md, plan_deployment(md, offers)) for md in inventory.deployments]
    assert all(result.feasible for _, result in pairs), [result.reasons for _, result in pairs]
    write_directory(render_all(pairs), target)


def tree(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): path.read_text() for path in sorted(root.rglob("*.yaml"))}


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, tmp_path: Path) -> None:
    render_case(case, tmp_path)
    expected_dir = GOLDEN / case / "expected"
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        shutil.copytree(tmp_path, expected_dir)
    assert tree(tmp_path) == tree(expected_dir)


def golden_objects() -> list[tuple[str, dict[str, Any]]]:
    objects = []
    for case in CASES:
        for path in sorted((GOLDEN / case / "expected").rglob("*.yaml")):
            document = yaml.safe_load(path.read_text())
            if document.get("kind") != "Kustomization":
                objects.append((f"{case}/{path.name}", document))
    return objects


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    for case in CASES:
        render_case(case, tmp_path / "a" / case)
        render_case(case, tmp_path / "b" / case)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")
