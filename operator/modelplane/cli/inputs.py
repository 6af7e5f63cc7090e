"""Read the YAML files named on the command line into one inventory, with catalog references checked."""

import sys
from pathlib import Path

from modelplane.api.documents import Inventory, load_documents
from modelplane.api.errors import InvalidObjectError
from modelplane.catalog.errors import CatalogError, UnknownGpuError
from modelplane.catalog.gpus import get_gpu
from modelplane.catalog.models import resolve_architecture


def check_references(found: Inventory, where: str) -> None:
    """Unknown models and GPUs are bad input: say which file, object and field, like any other error."""
    for deployment in found.deployments:
        described = f"{where}: ModelDeployment {deployment.metadata.namespace}/{deployment.metadata.name}"
        model = deployment.spec.model
        try:
            resolve_architecture(model.name, model.architecture, "config")
        except CatalogError as error:
            field = "spec.model.architecture" if model.architecture else "spec.model.name"
            raise InvalidObjectError(described, field, str(error).removeprefix("config: ")) from None
    for pool in found.pools:
        try:
            get_gpu(pool.spec.gpu)
        except UnknownGpuError as error:
            raise InvalidObjectError(f"{where}: GPUNodePool {pool.metadata.name}", "spec.gpu", str(error)) from None


def read_inventory(paths: list[Path]) -> Inventory:
    """Every ModelDeployment and GPUNodePool in the files (directories: their *.yaml / *.yml files; - is stdin)."""
    inventory = Inventory()
    for path in paths:
        if str(path) == "-":
            sources = [("<stdin>", sys.stdin.read())]
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
            sources = [(str(file), file.read_text()) for file in files]
        else:
            sources = [(str(path), path.read_text())]
        for where, text in sources:
            found = load_documents(text, where)
            check_references(found, where)
            inventory.deployments.extend(found.deployments)
            inventory.pools.extend(found.pools)
    return inventory
