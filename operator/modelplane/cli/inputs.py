"""Read the YAML files named on the command line into one inventory."""

import sys
from pathlib import Path

from modelplane.api.documents import Inventory, load_documents


def read_inventory(paths: list[Path]) -> Inventory:
    """Every ModelDeployment and GPUNodePool in the files (directories: their *.yaml / *.yml files; - is stdin)."""
    inventory = Inventory()
    for path in paths:
        if str(path) == "-":
            found = load_documents(sys.stdin.read(), "<stdin>")
            inventory.deployments.extend(found.deployments)
            inventory.pools.extend(found.pools)
            continue
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
        for file in files:
            found = load_documents(file.read_text(), str(file))
            inventory.deployments.extend(found.deployments)
            inventory.pools.extend(found.pools)
    return inventory
