"""`modelplane render`: plan and render every ModelDeployment into files for a GitOps repository."""

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from modelplane.api.errors import InvalidObjectError
from modelplane.api.model_deployment import Mode, ModelDeployment
from modelplane.api.plan import PlanResult
from modelplane.catalog.resolve import PACKAGED, ModelResolver
from modelplane.cli.errors import EXIT_INFEASIBLE
from modelplane.cli.inputs import read_inventory
from modelplane.planning.service import collector_paused, offers_for, plan_deployment
from modelplane.render.engine import render_with_cache
from modelplane.render.errors import RenderError
from modelplane.render.serialize import dump_object, dump_stream, kustomization, object_filename

Rendered = list[tuple[ModelDeployment, list[dict[str, Any]]]]


def report_infeasible(results: list[PlanResult]) -> None:
    for result in results:
        if result.feasible:
            continue
        typer.echo(f"modelplane: {result.namespace}/{result.name} is infeasible, nothing written:", err=True)
        for reason in result.reasons:
            typer.echo(f"  {reason.code.value}: {reason.message}", err=True)
        for suggestion in result.suggestions:
            typer.echo(f"  try: {suggestion}", err=True)


def render_all(pairs: list[tuple[ModelDeployment, PlanResult]], resolver: ModelResolver = PACKAGED) -> Rendered:
    """Every planned deployment's objects; a serving setting that cannot be rendered names its deployment."""
    rendered: Rendered = []
    for deployment, result in pairs:
        assert result.plan is not None
        try:
            objects, cache = render_with_cache(deployment, result.plan, resolver)
        except RenderError as error:
            described = f"ModelDeployment {deployment.metadata.namespace}/{deployment.metadata.name}"
            raise InvalidObjectError(described, error.field, error.problem) from None
        # The cache first: applied in this order, its download starts before the servers that wait for it.
        rendered.append((deployment, [cache.pvc, cache.job, *objects] if cache else objects))
    return rendered


def write_stream(rendered: Rendered) -> None:
    typer.echo(dump_stream([obj for _, objects in rendered for obj in objects]), nl=False)


def write_directory(rendered: Rendered, root: Path) -> None:
    """Write DIR/<namespace>/<name>/<kind>.yaml; each deployment directory is replaced whole, never half-written."""
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".modelplane-render-", dir=root))
    try:
        for deployment, objects in rendered:
            namespace = deployment.metadata.namespace or "default"
            target = staging / namespace / deployment.metadata.name
            target.mkdir(parents=True)
            names = []
            for obj in objects:
                (target / object_filename(obj)).write_text(dump_object(obj))
                names.append(object_filename(obj))
            (target / "kustomization.yaml").write_text(kustomization(names))
        for deployment, _ in rendered:
            relative = Path(deployment.metadata.namespace or "default") / deployment.metadata.name
            final = root / relative
            if final.exists():
                shutil.rmtree(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).rename(final)
        directories = sorted(
            str(path.relative_to(root)) for path in root.glob("*/*") if (path / "kustomization.yaml").exists()
        )
        (root / "kustomization.yaml").write_text(kustomization(directories))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def render_files(files: Sequence[Path], pools: Sequence[Path], output: str, resolver: ModelResolver = PACKAGED) -> None:
    """Plan and render the ModelDeployments of the files, as the operator would apply them.

    A PlanOnly deployment gets nothing, like in the cluster, and its plan cannot fail the render.
    """
    inventory = read_inventory(files, pools, resolver)
    offers = offers_for(inventory.pools)
    pairs = []
    with collector_paused():
        for deployment in inventory.deployments:
            if deployment.spec.mode is Mode.PLAN_ONLY:
                named = f"{deployment.metadata.namespace}/{deployment.metadata.name}"
                typer.echo(f"modelplane: {named}: mode PlanOnly, nothing rendered", err=True)
                continue
            pairs.append((deployment, plan_deployment(deployment, offers, resolver, candidates=False)))
    results = [result for _, result in pairs]
    if not all(result.feasible for result in results):
        report_infeasible(results)
        raise typer.Exit(EXIT_INFEASIBLE)
    rendered = render_all(pairs, resolver)
    if output == "-":
        write_stream(rendered)
    else:
        write_directory(rendered, Path(output))
