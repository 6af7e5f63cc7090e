"""The model catalog ConfigMaps of the operator's namespace, watched in a thread of their own.

Each change swaps the resolver whole and re-evaluates every deployment: a model that was unknown may be known
now, and a changed entry changes its plans' inputs.
"""

import asyncio
import logging
import threading
from typing import Any

from modelplane.catalog.errors import CatalogError
from modelplane.catalog.models import ModelEntry
from modelplane.catalog.resolve import configmap_entries
from modelplane.kube.catalog import watch_catalog
from modelplane.kube.errors import KubeError
from modelplane.operator import metrics
from modelplane.operator.settings import ModelSources
from modelplane.operator.state import REEVALUATE_KEY, Operator

LOGGER = logging.getLogger("modelplane.operator")
CATALOG_FIRST_LIST_SECONDS = 10.0
"""How long start-up waits for the first list of catalog ConfigMaps, so models they define plan at once."""


async def start_catalog_watch(operator: Operator, sources: ModelSources) -> None:
    """Watch the catalog ConfigMaps in a thread of its own; wait (a bounded time) for the first list."""
    namespace = sources.catalog_namespace
    if namespace is None:
        return
    loop = asyncio.get_running_loop()

    def changed(configmaps: list[dict[str, Any]]) -> None:
        entries = catalog_from(configmaps, namespace)
        if entries != operator.catalog_entries or not operator.catalog_listed.is_set():
            operator.catalog_entries = entries
            operator.resolver = operator.resolver.with_entries(entries)
            LOGGER.info(f"model catalog: {len(entries)} entries from ConfigMaps in {namespace}")
            # A model that was unknown may be known now, and a changed entry changes its plan's inputs.
            loop.call_soon_threadsafe(operator.queue.add_after, REEVALUATE_KEY, 0.0)
        operator.catalog_listed.set()

    def failed(error: KubeError) -> None:
        metrics.observe_error(error)
        LOGGER.warning(f"model catalog ConfigMaps: {error}; listing again")

    threading.Thread(target=watch_catalog, args=(operator.api, namespace, changed, failed, operator.stop),
                     name="model-catalog", daemon=True).start()  # fmt: skip
    await asyncio.to_thread(operator.catalog_listed.wait, CATALOG_FIRST_LIST_SECONDS)


def catalog_from(configmaps: list[dict[str, Any]], namespace: str) -> tuple[ModelEntry, ...]:
    """Every well-formed entry of the ConfigMaps, by ConfigMap name; a malformed ConfigMap is logged and left out.

    An entry whose architecture the planner refuses stays: planning its deployments says why, in their status.
    """
    entries: list[ModelEntry] = []
    for configmap in sorted(configmaps, key=lambda item: str(item["metadata"]["name"])):
        where = f"ConfigMap {namespace}/{configmap['metadata']['name']}"
        try:
            found = configmap_entries(configmap, where)
        except CatalogError as error:
            LOGGER.warning(f"ignoring model catalog {where}: {error}")
            continue
        entries.extend(found)
    return tuple(entries)
