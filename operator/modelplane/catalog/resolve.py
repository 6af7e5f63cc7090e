"""Which architecture a model name stands for: one resolution chain, shared by the CLI and the operator.

In order, the first that knows the model wins:

1. `spec.model.architecture` (config.json fields; merged over an entry found below, the user's fields winning),
2. the packaged catalog (catalog/data/models),
3. user catalog entries: `--catalog` files of the CLI, ConfigMaps labelled `modelplane.dev/model-catalog: "true"`
   in the operator's namespace (both as `modelplane catalog add` prints them),
4. the model's own files, when Hub resolution is enabled: the Hugging Face Hub (`HF_ENDPOINT` for a mirror such
   as an Artifactory or Nexus remote), or with `HF_HUB_OFFLINE=1` a pre-populated HF cache; `catalog add` also
   reads a local model directory. Only config.json, hf_quant_config.json and the safetensors headers are read
   (huggingface_hub's header reader: range requests), never the weights.

No Kubernetes I/O here: the operator hands in the entries it read from ConfigMaps.
"""

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelplane.api.base import MODEL_CATALOG_KEY, MODEL_CATALOG_LABEL
from modelplane.catalog.architecture import Architecture
from modelplane.catalog.checkpoint import TensorSummary, hub_headers, local_safetensors, read_local_headers, summarize
from modelplane.catalog.errors import CatalogError, ModelSourceError, UnknownModelError
from modelplane.catalog.models import ModelEntry, find_model, merge_architecture, unknown_model

CONFIG_FILE = "config.json"
QUANT_CONFIG_FILE = "hf_quant_config.json"
MAX_CONFIG_BYTES = 4 * 2**20
"""config.json and hf_quant_config.json are a few KiB; a larger file is not one."""
DEFAULT_CACHE_MODELS = 64


@dataclass(frozen=True)
class ResolvedModel:
    """What planning needs of a model: its architecture, the entry it came from (if any), and where from."""

    architecture: Architecture
    entry: ModelEntry | None
    origin: str

    @property
    def tensors(self) -> TensorSummary | None:
        return self.entry.tensors if self.entry is not None else None


@dataclass(frozen=True)
class HubSettings:
    """How to reach the model's own files. None fields fall back to huggingface_hub's environment variables
    (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE / HF_HOME, HF_HUB_OFFLINE)."""

    endpoint: str | None = None
    token: str | None = None
    cache_dir: Path | None = None
    offline: bool | None = None
    timeout_seconds: float = 10.0


@dataclass
class HubCache:
    """The entries read from the Hub, least recently used dropped first: bounded however many models are asked."""

    max_models: int = DEFAULT_CACHE_MODELS
    _entries: OrderedDict[str, ModelEntry] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, name: str) -> ModelEntry | None:
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                self._entries.move_to_end(name)
            return entry

    def put(self, name: str, entry: ModelEntry) -> None:
        with self._lock:
            self._entries[name] = entry
            self._entries.move_to_end(name)
            while len(self._entries) > self.max_models:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class ModelResolver:
    """The resolution chain of the module docstring; thread-safe (the operator's workers share one)."""

    def __init__(
        self, entries: Iterable[ModelEntry] = (), hub: HubSettings | None = None, cache: HubCache | None = None
    ) -> None:
        self.hub = hub
        self.cache = cache if cache is not None else HubCache()
        self.entries: dict[str, ModelEntry] = {}
        for entry in entries:
            for spelling in (entry.name, *entry.aliases):
                self.entries[spelling.lower()] = entry

    def with_entries(self, entries: Iterable[ModelEntry]) -> "ModelResolver":
        """The same Hub settings and cache with other user entries (the operator's ConfigMaps changed)."""
        return ModelResolver(entries, self.hub, self.cache)

    def find(self, name: str) -> tuple[ModelEntry, str] | None:
        """The entry for a name and where it came from, without the Hub."""
        entry = find_model(name)
        if entry is not None:
            return entry, "catalog"
        user = self.entries.get(name.lower())
        return (user, "user catalog") if user is not None else None

    def resolve(self, name: str, architecture: Mapping[str, Any] | None, source: str) -> ResolvedModel:
        found = self.find(name)
        if found is None and not architecture and self.hub is not None:
            found = self._from_hub(name, source), "hub"
        if found is None:
            if not architecture:
                raise unknown_model(name, source)
            return ResolvedModel(merge_architecture(None, architecture, source), None, "spec")
        entry, origin = found
        return ResolvedModel(merge_architecture(entry, architecture, source), entry, "spec" if architecture else origin)

    def _from_hub(self, name: str, source: str) -> ModelEntry:
        assert self.hub is not None
        cached = self.cache.get(name)
        if cached is not None:
            return cached
        try:
            entry = read_hub_model(name, self.hub)
        except UnknownModelError as error:
            raise UnknownModelError(f"{unknown_model(name, source)} ({error})") from None
        self.cache.put(name, entry)
        return entry


PACKAGED = ModelResolver()
"""The spec and the packaged catalog only: what plans without --catalog, ConfigMaps or the Hub use."""


# -- user catalog files and ConfigMaps ---------------------------------------------------------------------
def _entry(data: Any, where: str) -> ModelEntry:
    try:
        return ModelEntry.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise CatalogError(f"{where}: catalog entry field {location}: {first['msg']}") from None


def configmap_entries(configmap: Mapping[str, Any], where: str) -> list[ModelEntry]:
    """The catalog entries of a ConfigMap: every data value under a key ending in .yaml, .yml or .json."""
    data = configmap.get("data") or {}
    if not isinstance(data, Mapping):
        raise CatalogError(f"{where}: ConfigMap data must be an object")
    entries = []
    for key, text in sorted(data.items()):
        if not str(key).endswith((".yaml", ".yml", ".json")):
            continue
        try:
            document = yaml.safe_load(str(text))
        except yaml.YAMLError as error:
            raise CatalogError(f"{where}: data.{key} is not YAML ({str(error).splitlines()[0]})") from None
        entries.append(_entry(document, f"{where}: data.{key}"))
    return entries


def is_catalog_configmap(document: Mapping[str, Any]) -> bool:
    labels = (document.get("metadata") or {}).get("labels") or {}
    return document.get("kind") == "ConfigMap" and labels.get(MODEL_CATALOG_LABEL) == "true"


def catalog_entries(text: str, where: str) -> list[ModelEntry]:
    """The entries of a --catalog file: catalog ConfigMaps (as `catalog add` prints them) or bare entries."""
    try:
        documents = [document for document in yaml.safe_load_all(text) if document is not None]
    except yaml.YAMLError as error:
        raise CatalogError(f"{where}: invalid YAML ({str(error).splitlines()[0]})") from None
    entries: list[ModelEntry] = []
    for document in documents:
        if not isinstance(document, Mapping):
            kind = type(document).__name__
            raise CatalogError(f"{where}: expected catalog ConfigMaps or catalog entries, got a {kind}")
        if document.get("kind") == "ConfigMap":
            if not is_catalog_configmap(document):
                raise CatalogError(f"{where}: a ConfigMap without the label {MODEL_CATALOG_LABEL}: \"true\"; the"
                                   " operator would ignore it, so the CLI does not read it either")  # fmt: skip
            entries.extend(configmap_entries(document, where))
        else:
            entries.append(_entry(document, where))
    return entries


def configmap_name(model: str) -> str:
    """A DNS-1123 name for a model's catalog ConfigMap: `model-catalog-` and the lowercased name."""
    cleaned = "".join(char if char.isalnum() else "-" for char in model.lower()).strip("-")
    return f"model-catalog-{cleaned}"[:253].rstrip("-")


def catalog_configmap(entry: ModelEntry) -> dict[str, Any]:
    """A catalog entry as the ConfigMap the operator reads and `--catalog` accepts."""
    document = entry.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap_name(entry.name), "labels": {MODEL_CATALOG_LABEL: "true"}},
        "data": {MODEL_CATALOG_KEY: yaml.safe_dump(document, sort_keys=False, default_flow_style=None)},
    }


# -- the model's own files ---------------------------------------------------------------------------------
def _json_file(path: Path, where: str) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ModelSourceError(f"{where}: cannot read {path.name} ({error.strerror or error})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ModelSourceError(f"{where}: {path.name} is larger than {MAX_CONFIG_BYTES // 2**20} MiB")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise ModelSourceError(f"{where}: {path.name} is not valid JSON") from None
    if not isinstance(document, dict):
        raise ModelSourceError(f"{where}: {path.name} is not a JSON object")
    return document


def _model_entry(name: str, source: str, config: dict[str, Any], quant: dict[str, Any] | None,
                 tensors: TensorSummary | None) -> ModelEntry:  # fmt: skip
    entry = ModelEntry(name=name, config_source=source, config=config, quant_config=quant, tensors=tensors)
    entry.architecture  # noqa: B018 (refuses here, with the file named, what the planner could not size)
    return entry


def read_model_directory(directory: Path, name: str, where: str | None = None) -> ModelEntry:
    """A catalog entry from a model directory: config.json, hf_quant_config.json, the safetensors headers."""
    where = where or str(directory)
    config_path = directory / CONFIG_FILE
    if not config_path.is_file():
        raise UnknownModelError(f"{where}: no {CONFIG_FILE}")
    quant_path = directory / QUANT_CONFIG_FILE
    quant = _json_file(quant_path, where) if quant_path.is_file() else None
    files = local_safetensors(directory)
    tensors = summarize(read_local_headers(files), where) if files else None
    return _model_entry(name, where, _json_file(config_path, where), quant, tensors)


def _offline(hub: HubSettings) -> bool:
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE if hub.offline is None else hub.offline


def read_hub_model(repo_id: str, hub: HubSettings) -> ModelEntry:
    """A catalog entry from the Hub (or a mirror), or with offline mode from the HF cache.

    Raises UnknownModelError when the repository or its config.json does not exist there, ModelSourceError when
    the Hub cannot be reached or answers otherwise.
    """
    import httpx2
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        NotASafetensorsRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils.tqdm import disable_progress_bars

    disable_progress_bars()  # stderr is for one-line errors
    try:
        if _offline(hub):
            snapshot = snapshot_download(repo_id, cache_dir=hub.cache_dir, local_files_only=True)
            return read_model_directory(Path(snapshot), repo_id, f"HF cache {repo_id}")
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        config_path = Path(api.hf_hub_download(repo_id, CONFIG_FILE, cache_dir=hub.cache_dir))
        where = f"{api.endpoint}/{repo_id}"
        try:
            quant_path = Path(api.hf_hub_download(repo_id, QUANT_CONFIG_FILE, cache_dir=hub.cache_dir))
            quant = _json_file(quant_path, where)
        except EntryNotFoundError:
            quant = None
        try:
            metadata = api.get_safetensors_metadata(repo_id, timeout=hub.timeout_seconds)
            files = {filename: {name: (info.dtype, tuple(info.shape), info.data_offsets[1] - info.data_offsets[0])
                                for name, info in file.tensors.items()}
                     for filename, file in metadata.files_metadata.items()}  # fmt: skip
            tensors: TensorSummary | None = summarize(hub_headers(files), where)
        except NotASafetensorsRepoError:
            tensors = None
        commit = config_path.parent.name
        source = f"{where}/resolve/{commit}/{CONFIG_FILE}"
        return _model_entry(repo_id, source, _json_file(config_path, where), quant, tensors)
    except GatedRepoError:
        raise ModelSourceError(f"{repo_id}: a gated repository; give the Hub token of an account with access"
                               " (HF_TOKEN, or the chart's hub.tokenSecret)") from None  # fmt: skip
    except LocalEntryNotFoundError as error:
        if _offline(hub):
            raise UnknownModelError(f"the HF cache (HF_HUB_OFFLINE) has no model {repo_id!r}") from None
        raise ModelSourceError(f"{repo_id}: the Hub could not be reached ({_first_line(error)})") from None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError, HFValidationError) as error:
        raise UnknownModelError(f"the Hub has no model {repo_id!r}: {_first_line(error)}") from None
    except (OfflineModeIsEnabled, HfHubHTTPError, httpx2.HTTPError, OSError) as error:
        raise ModelSourceError(f"{repo_id}: cannot read the model's files ({type(error).__name__}:"
                               f" {_first_line(error)})") from None  # fmt: skip


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_model_files(reference: str, hub: HubSettings, name: str | None = None) -> ModelEntry:
    """`catalog add`: a local model directory when `reference` is one, else a Hub repository id."""
    path = Path(reference)
    if path.is_dir():
        return read_model_directory(path, name or path.resolve().name)
    entry = read_hub_model(reference, hub)
    return entry.model_copy(update={"name": name}) if name else entry


def resolver_from(entries: Sequence[ModelEntry], hub: HubSettings | None) -> ModelResolver:
    return ModelResolver(entries, hub) if entries or hub is not None else PACKAGED
