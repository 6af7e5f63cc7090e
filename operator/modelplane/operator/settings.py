"""Every kopf setting in one place, applied once at start-up."""

import getpass
import logging
import os
import secrets
import socket
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from modelplane.api.base import API_GROUP
from modelplane.catalog.resolve import DEFAULT_CACHE_MODELS, HubSettings
from modelplane.render.context import DEFAULT_PROMETHEUS_ADDRESS

WATCH_SERVER_TIMEOUT_SECONDS = 300
LIST_CHUNK_SIZE = 200
WATCH_CLIENT_TIMEOUT_SECONDS = 330
CONNECT_TIMEOUT_SECONDS = 10
REQUEST_TIMEOUT_SECONDS = 30
HANDLER_WORKERS = 16
PEERING_NAME = "modelplane"
DEFAULT_KOPF_PEERING = "default"
MAX_PRIORITY = 1_000_000


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff-base: kopf keeps one only for its change handlers (on.create, on.update, on.resume, on.delete),
    and the operator has none; its handlers are level-triggered `on.event` handlers and indexes.

    kopf still builds the essence of every event's body (a deep copy of it, then a second deep copy to clear
    it) unless the storage gives none: 7 % of the operator's CPU while it converged 300 ModelDeployments
    (a py-spy profile of benchmarks/bench_scale.py). An empty essence makes every diff empty, which no
    handler of ours reads; tests/operator/test_settings.py keeps it that way.
    """

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def configure(settings: kopf.OperatorSettings) -> None:
    """Prefixes under our API group, explicit timeouts, and no kopf-generated events or annotations.

    Handlers are level-triggered `on.event` handlers that compare before they write, so kopf's
    diff-base and progress annotations are not needed; storing them would add a write per change.
    """
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    # kopf's initial listing in pages, not one response per resource: parsing a list of every pod, Deployment and
    # ModelDeployment at once is the memory peak a freshly started operator keeps (BENCHMARKS.md, RSS).
    settings.watching.chunk_size = LIST_CHUNK_SIZE
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT_SECONDS
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT_SECONDS
    settings.watching.connect_timeout = CONNECT_TIMEOUT_SECONDS
    settings.networking.connect_timeout = CONNECT_TIMEOUT_SECONDS
    settings.networking.request_timeout = REQUEST_TIMEOUT_SECONDS
    settings.posting.enabled = False
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = HANDLER_WORKERS
    if settings.peering.name == DEFAULT_KOPF_PEERING:
        settings.peering.name = PEERING_NAME
    # `--peering NAME` makes peering mandatory (kopf: a missing peering object stops the operator rather than
    # letting every replica act); left as kopf sets it.
    if not settings.peering.standalone and settings.peering.priority == 0:
        # Replicas of one Deployment share their arguments; kopf freezes every operator when peers have the
        # same priority, so each replica draws its own and the highest one acts.
        settings.peering.priority = secrets.randbelow(MAX_PRIORITY) + 1


CATALOG_NAMESPACE_ENV = "MODELPLANE_CATALOG_NAMESPACE"
HUB_ENV = "MODELPLANE_HUB"
HUB_CACHE_ENV = "MODELPLANE_HUB_CACHE_MODELS"


@dataclass(frozen=True)
class ModelSources:
    """Where the operator looks up models beyond the spec and the packaged catalog (the chart sets these)."""

    catalog_namespace: str | None
    hub: HubSettings | None
    hub_cache_models: int


def model_sources(environ: Mapping[str, str] = os.environ) -> ModelSources:
    """From the environment: the namespace of the catalog ConfigMaps (the chart: the operator's own), and whether
    to read unknown models from the Hub (HF_ENDPOINT, HF_TOKEN_PATH and HF_HUB_OFFLINE as huggingface_hub reads
    them: the token is a file mounted from a Secret, never read through the API)."""
    hub = environ.get(HUB_ENV, "").lower() in ("1", "true")
    cache = environ.get(HUB_CACHE_ENV, "")
    if cache and (not cache.isdigit() or int(cache) < 1):
        raise ValueError(f"{HUB_CACHE_ENV} must be a positive integer, got {cache!r}")
    return ModelSources(environ.get(CATALOG_NAMESPACE_ENV) or None, HubSettings() if hub else None,
                        int(cache) if cache else DEFAULT_CACHE_MODELS)  # fmt: skip


def watched_namespaces(argv: Sequence[str]) -> list[str]:
    """The namespaces given to `kopf run` as `-n NAME`/`--namespace NAME` (or `=NAME`); empty for all of them."""
    found: list[str] = []
    for index, arg in enumerate(argv):
        if arg in ("-n", "--namespace") and index + 1 < len(argv):
            found.append(argv[index + 1])
        elif arg.startswith("--namespace="):
            found.append(arg.split("=", 1)[1])
    return found


def ensure_identity(environ: MutableMapping[str, str]) -> str:
    """This replica's peering identity, set in $POD_ID before kopf starts so the peering gate knows it too.

    The chart sets POD_ID to the pod's name; elsewhere it is made as kopf makes its own (user@host/time/random).
    """
    identity = environ.get("POD_ID")
    if identity is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        identity = f"{getpass.getuser()}@{socket.gethostname()}/{stamp}/{secrets.token_hex(2)}"
        environ["POD_ID"] = identity
    return identity


PROMETHEUS_ENV = "MODELPLANE_PROMETHEUS_ADDRESS"


def prometheus_address(environ: Mapping[str, str] = os.environ) -> str:
    """The Prometheus KEDA's triggers query for spec.autoscaling (the chart's autoscaling.prometheusAddress)."""
    address = environ.get(PROMETHEUS_ENV) or DEFAULT_PROMETHEUS_ADDRESS
    if not address.startswith(("http://", "https://")):
        raise ValueError(f"{PROMETHEUS_ENV} must be an http:// or https:// URL, got {address!r}")
    return address
