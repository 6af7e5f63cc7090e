"""Read the YAML files named on the command line into one inventory, with catalog references checked."""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from modelplane.api.documents import Inventory, load_documents
from modelplane.api.errors import InvalidObjectError
from modelplane.catalog.errors import CatalogError, UnknownGpuError
from modelplane.catalog.gpus import get_gpu
from modelplane.catalog.models import ModelEntry
from modelplane.catalog.resolve import PACKAGED, ModelResolver, catalog_entries
from modelplane.cli.errors import InputFileError

STDIN = "<stdin>"


def decode(data: bytes, where: str) -> str:
    """UTF-8, with the byte-order mark some Windows editors write dropped; anything else is one error line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputFileError(
            where, f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


MAX_INPUT_BYTES = 64 * 2**20
"""The most one input may hold: thousands of manifests fit; /dev/zero or a wrong file does not hang the CLI."""


def read_bounded(stream: BinaryIO, where: str) -> bytes:
    data = stream.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise InputFileError(where, f"larger than {MAX_INPUT_BYTES // 2**20} MiB; not a manifest or config.json")
    return data


def read_text(path: Path) -> str:
    """A file named on the command line as text; an unreadable file or a directory raises OSError naming it."""
    with path.open("rb") as stream:
        return decode(read_bounded(stream, str(path)), str(path))


def check_references(found: Inventory, where: str, resolver: ModelResolver = PACKAGED) -> None:
    """Unknown models and GPUs are bad input: say which file, object and field, like any other error."""
    for deployment in found.deployments:
        described = f"{where}: ModelDeployment {deployment.metadata.namespace}/{deployment.metadata.name}"
        model = deployment.spec.model
        try:
            resolver.resolve(model.name, model.architecture, "config")
        except CatalogError as error:
            field = "spec.model.architecture" if model.architecture else "spec.model.name"
            raise InvalidObjectError(described, field, str(error).removeprefix("config: ")) from None
    for pool in found.pools:
        try:
            get_gpu(pool.spec.gpu)
        except UnknownGpuError as error:
            raise InvalidObjectError(f"{where}: GPUNodePool {pool.metadata.name}", "spec.gpu", str(error)) from None


def _shown(path: Path) -> str:
    return STDIN if str(path) == "-" else str(path)


def _sources(path: Path) -> list[tuple[str, str]]:
    """(where, text) of every YAML file a command-line path names: a file, a directory's *.yaml / *.yml, or -."""
    if str(path) == "-":
        return [(STDIN, decode(read_bounded(sys.stdin.buffer, STDIN), STDIN))]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        return [(str(file), read_text(file)) for file in files]
    return [(str(path), read_text(path))]


def read_catalog(paths: Sequence[Path]) -> list[ModelEntry]:
    """The model catalog entries of --catalog files and directories (ConfigMaps as `catalog add` prints them)."""
    entries = []
    for path in paths:
        found = [entry for where, text in _sources(path) for entry in catalog_entries(text, where)]
        if not found:
            raise InputFileError(_shown(path), "no model catalog entry found (`modelplane catalog add` makes one)")
        entries.extend(found)
    return entries


def _read(path: Path, resolver: ModelResolver) -> list[tuple[str, Inventory]]:
    """Each YAML file a command-line path names, with its objects."""
    found = []
    for where, text in _sources(path):
        try:
            objects = load_documents(text, where)
        except RecursionError:
            raise InputFileError(where, "invalid YAML: nested too deeply") from None
        check_references(objects, where, resolver)
        found.append((where, objects))
    return found


def _check_unique(files: list[tuple[str, Inventory]]) -> None:
    """One namespace/name is one object in the cluster and one directory of `render`: two would overwrite."""
    seen: dict[tuple[str | None, str], str] = {}
    for where, objects in files:
        for deployment in objects.deployments:
            key = (deployment.metadata.namespace, deployment.metadata.name)
            if key in seen:
                raise InputFileError(where, f"ModelDeployment {key[0]}/{key[1]} is also defined in {seen[key]}; "
                                     "keep one of them")  # fmt: skip
            seen[key] = where


def read_inventory(files: Sequence[Path], pools: Sequence[Path] = (), resolver: ModelResolver = PACKAGED) -> Inventory:
    """Every ModelDeployment and GPUNodePool in the files and the --pools files.

    Finding nothing is bad input, not an empty plan: an empty directory in a GitOps pipeline is a wrong path,
    and a --pools file without pools would silently fall back to the what-if inventory. Empty documents in a
    stream are skipped. A ModelDeployment in a --pools file is refused rather than skipped: a GitOps pipeline
    that silently rendered nothing for it would prune its running servers.
    """
    parts = [part for path in files for part in _read(path, resolver)]
    _check_unique(parts)
    for path in pools:
        found = _read(path, resolver)
        for where, objects in found:
            if objects.deployments:
                metadata = objects.deployments[0].metadata
                raise InputFileError(where, f"ModelDeployment {metadata.namespace}/{metadata.name} in a --pools file: "
                                     "--pools reads only GPUNodePools; name the file without --pools")  # fmt: skip
        if not any(objects.pools for _, objects in found):
            raise InputFileError(_shown(path), "no GPUNodePool found (--pools names the inventory to plan against)")
        parts.extend(found)
    inventory = Inventory(
        deployments=[deployment for _, part in parts for deployment in part.deployments],
        pools=[pool for _, part in parts for pool in part.pools],
    )
    if not inventory.deployments:
        raise InputFileError(", ".join(_shown(path) for path in files), "no ModelDeployment found")
    return inventory
