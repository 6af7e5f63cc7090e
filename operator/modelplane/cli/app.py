"""Typer application: `modelplane plan | estimate | catalog | render`."""

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from modelplane.api.serving import KvCacheDtype, Quantization
from modelplane.catalog.gpus import gpu_catalog
from modelplane.catalog.models import model_catalog
from modelplane.catalog.resolve import HubSettings, ModelResolver, catalog_configmap, read_model_files, resolver_from
from modelplane.cli.errors import EXIT_INFEASIBLE, EXIT_OK, BadInputGroup, InputFileError, user_errors
from modelplane.cli.explain import fetch, print_explanation
from modelplane.cli.inputs import read_catalog, read_inventory, read_text
from modelplane.cli.markdown import plan_markdown
from modelplane.cli.output import print_table, to_block_yaml, to_json, to_yaml
from modelplane.cli.render import render_files
from modelplane.cli.svg import plan_svg
from modelplane.kube.errors import KubeError
from modelplane.planning.estimate import estimate_model
from modelplane.planning.service import collector_paused, offers_for, plan_deployment

app = typer.Typer(
    cls=BadInputGroup,
    help="Plan, render and operate LLM serving on Kubernetes GPU node pools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
catalog_app = typer.Typer(help="List the GPU and model catalogs; add a model.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


class PlanFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"
    MARKDOWN = "markdown"
    SVG = "svg"


class DataFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class EstimateFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def console() -> Console:
    """Wide enough for the plan table when piped (CI logs, pull-request comments)."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _emit(data: Any, output: str) -> None:
    typer.echo(to_json(data) if output == "json" else to_yaml(data), nl=False)


CatalogOption = Annotated[
    list[Path] | None,
    typer.Option("--catalog", help="Model catalog entries: files or directories of ConfigMaps from `catalog add`."),
]
HubOption = Annotated[
    bool,
    typer.Option("--hub", help="Read unknown models' config.json and safetensors headers from the Hugging Face Hub"
                 " (HF_ENDPOINT for a mirror, HF_HUB_OFFLINE=1 for the HF cache only, HF_TOKEN)."),
]  # fmt: skip


def _resolver(catalog: list[Path] | None, hub: bool) -> ModelResolver:
    return resolver_from(read_catalog(catalog or []), HubSettings() if hub else None)


@app.command()
def plan(
    files: Annotated[list[Path], typer.Argument(help="YAML files or directories with ModelDeployments and pools.")],
    output: Annotated[PlanFormat, typer.Option("--output", "-o", help="Output format.")] = PlanFormat.TABLE,
    pools: Annotated[
        list[Path] | None, typer.Option("--pools", help="Extra files with GPUNodePools (the inventory).")
    ] = None,
    catalog: CatalogOption = None,
    hub: HubOption = False,
) -> None:
    """Plan every ModelDeployment. Exit 0: all feasible; 2: some infeasible; 1: bad input."""
    with user_errors():
        resolver = _resolver(catalog, hub)
        inventory = read_inventory(files, pools or [], resolver)
        offers = offers_for(inventory.pools)
        with collector_paused():
            results = [plan_deployment(deployment, offers, resolver) for deployment in inventory.deployments]
    if output is PlanFormat.TABLE:
        print_table(results, console())
    elif output is PlanFormat.MARKDOWN:
        typer.echo(plan_markdown(results), nl=False)
    elif output is PlanFormat.SVG:
        typer.echo(plan_svg(results), nl=False)
    else:
        _emit([result.to_wire() for result in results], output.value)
    raise typer.Exit(EXIT_OK if all(result.feasible for result in results) else EXIT_INFEASIBLE)


def _read_config(path: Path) -> dict[str, Any]:
    """A model's config.json; an empty object is refused here, or the catalog would be searched by file name."""
    try:
        config = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputFileError(
            str(path), f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise InputFileError(str(path), "invalid JSON: nested too deeply") from None
    except ValueError:
        # json refuses integers of more than 4300 digits (Python's conversion limit); config.json has none.
        raise InputFileError(str(path), "invalid JSON: an integer of more than 4300 digits") from None
    if not isinstance(config, dict) or not config:
        raise InputFileError(str(path), "expected a JSON object with a model's architecture (a config.json)")
    return config


@app.command()
def render(
    files: Annotated[list[Path], typer.Argument(help="YAML files or directories with ModelDeployments and pools.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Directory to write, or - for a YAML stream.")],
    pools: Annotated[
        list[Path] | None, typer.Option("--pools", help="Extra files with GPUNodePools (the inventory).")
    ] = None,
    catalog: CatalogOption = None,
    hub: HubOption = False,
) -> None:
    """Plan and render serving manifests. Infeasible deployments: exit 2 and nothing is written."""
    with user_errors():
        render_files(files, pools or [], output, _resolver(catalog, hub))


@app.command()
def explain(
    target: Annotated[str, typer.Argument(help="md/NAME of a live ModelDeployment.")],
    namespace: Annotated[str, typer.Option("--namespace", "-n")] = "default",
) -> None:
    """Explain a live ModelDeployment: conditions, plan, memory per GPU and rejected pools (uses KUBECONFIG)."""
    with user_errors(extra=(ValueError, KubeError)):
        md = fetch(target, namespace)
    print_explanation(md, console())


@app.command()
def estimate(
    model: Annotated[str | None, typer.Option("--model", help="Catalog model name or alias.")] = None,
    model_config: Annotated[
        Path | None,
        typer.Option("--model-config", help="A model's config.json (any model, no catalog needed)."),
    ] = None,
    quantization: Annotated[Quantization, typer.Option("--quantization")] = Quantization.AUTO,
    kv_cache_dtype: Annotated[KvCacheDtype, typer.Option("--kv-cache-dtype")] = KvCacheDtype.AUTO,
    output: Annotated[EstimateFormat, typer.Option("--output", "-o")] = EstimateFormat.JSON,
    catalog: CatalogOption = None,
    hub: HubOption = False,
) -> None:
    """Size a model: parameters, weight bytes and KV-cache bytes per token."""
    if (model is None) == (model_config is None):
        typer.echo("modelplane: error: give exactly one of --model or --model-config", err=True)
        raise typer.Exit(1)
    with user_errors():
        architecture: dict[str, Any] | None = None
        name, source = model or "", model or ""
        if model_config is not None:
            architecture = _read_config(model_config)
            source = str(model_config)
            name = str(architecture.get("_name_or_path") or model_config.parent.name or model_config.stem)
        result = estimate_model(name, architecture, quantization, kv_cache_dtype, source, _resolver(catalog, hub))
    if output is EstimateFormat.TABLE:
        table = Table(title=f"estimate {result.model}")
        table.add_column("field")
        table.add_column("value", justify="right")
        for key, value in result.to_wire().items():
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
        console().print(table)
    else:
        _emit(result.to_wire(), output.value)


@catalog_app.command("gpus")
def catalog_gpus(output: Annotated[DataFormat, typer.Option("--output", "-o")] = DataFormat.TABLE) -> None:
    """GPUs the planner knows, with the numbers it uses."""
    with user_errors():
        gpus = list(gpu_catalog().values())
    if output is DataFormat.JSON:
        _emit([gpu.model_dump(mode="json", by_alias=True) for gpu in gpus], "json")
        return
    table = Table(title="GPU catalog")
    for column in ("ID", "VENDOR", "MEMORY", "BANDWIDTH", "BF16 TFLOPS", "FP8 TFLOPS", "ARCH", "LINK"):
        table.add_column(column)
    for gpu in gpus:
        table.add_row(
            gpu.id,
            gpu.vendor.value,
            f"{gpu.memory_bytes / 1024**3:.1f} GiB",
            f"{gpu.memory_bandwidth_g_bps} GB/s",
            str(gpu.bf16_dense_tflops),
            str(gpu.fp8_dense_tflops or "-"),
            gpu.compute_capability or gpu.gfx_arch or "-",
            gpu.interconnect.value,
        )
    console().print(table)


@catalog_app.command("models")
def catalog_models(output: Annotated[DataFormat, typer.Option("--output", "-o")] = DataFormat.TABLE) -> None:
    """Models whose architecture is in the catalog (others need spec.model.architecture)."""
    with user_errors():
        entries = list(model_catalog().values())
        rows = [(entry, entry.architecture) for entry in entries]
    if output is DataFormat.JSON:
        _emit([entry.model_dump(mode="json", by_alias=True, exclude={"config"}) for entry in entries], "json")
        return
    table = Table(title="Model catalog")
    for column in ("NAME", "ALIASES", "TYPE", "LAYERS", "HEADS/KV", "PRE-QUANTIZED"):
        table.add_column(column)
    for entry, arch in rows:
        table.add_row(
            entry.name,
            ", ".join(entry.aliases),
            arch.model_type,
            str(arch.num_layers),
            f"{arch.num_attention_heads}/{arch.num_kv_heads}",
            entry.pre_quantized or "-",
        )
    console().print(table)


class EntryFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"


@catalog_app.command("add")
def catalog_add(
    reference: Annotated[str, typer.Argument(help="A Hugging Face repository id, or a local model directory.")],
    name: Annotated[
        str | None,
        typer.Option("--name", help="The model name deployments use (default: the repository id or directory name)."),
    ] = None,
    output: Annotated[EntryFormat, typer.Option("--output", "-o")] = EntryFormat.YAML,
) -> None:
    """Print a model catalog entry as a ConfigMap for the operator's namespace (or for plan/render --catalog).

    Reads config.json, hf_quant_config.json and the safetensors headers (not the weights): from a local directory,
    or from the Hub (HF_ENDPOINT for a mirror, HF_TOKEN, HF_HUB_OFFLINE=1 for the HF cache only).
    """
    with user_errors():
        entry = read_model_files(reference, HubSettings(), name)
    configmap = catalog_configmap(entry)
    typer.echo(to_json(configmap) if output is EntryFormat.JSON else to_block_yaml(configmap), nl=False)


def main() -> None:
    app(prog_name="modelplane")
