"""How Argo CD and Flux judge our objects: the chart's Lua health checks, run for real, and kstatus's rules.

Shared by the unit tests (status fixtures, operator decisions) and the end-to-end tests (live objects).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lupa.lua51 import LuaRuntime

REPO = Path(__file__).resolve().parents[1]
ARGOCD = REPO / "charts" / "modelplane" / "argocd"
HEALTH_SCRIPTS = {"ModelDeployment": ARGOCD / "modeldeployment-health.lua",
                  "GPUNodePool": ARGOCD / "gpunodepool-health.lua"}  # fmt: skip
ARGOCD_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# Argo CD opens only these of Lua's libraries (util/lua/lua.go, runLua) unless useOpenLibs is set.
ARGOCD_LIBRARIES = {"package", "table", "os"}
LUA_LIBRARIES = {"string", "math", "io", "os", "debug", "coroutine", "package", "table"}


@dataclass(frozen=True)
class Health:
    status: str
    message: str


def argocd_health(obj: dict[str, Any]) -> Health:
    """Run the chart's health script for `obj`'s kind as Argo CD does: gopher-lua is a Lua 5.1 VM, the object
    is the global `obj` (lists as 1-based tables), and a status outside Argo CD's set reads as Unknown."""
    lua = LuaRuntime(register_eval=False)
    for library in LUA_LIBRARIES - ARGOCD_LIBRARIES:
        lua.globals()[library] = None
    lua.globals()["obj"] = lua.table_from(obj, recursive=True)
    returned = lua.execute(HEALTH_SCRIPTS[obj["kind"]].read_text())
    status, message = str(returned["status"]), returned["message"]
    if status not in ARGOCD_STATUSES:
        return Health("Unknown", "Lua returned an invalid health status")
    return Health(status, "" if message is None else str(message))


def _conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("status") or {}).get("conditions") or [])


def kstatus(obj: dict[str, Any]) -> Health:
    """kstatus's `Compute` for a custom resource (cli-utils pkg/kstatus/status: status.go, generic.go).

    In order: a deletion timestamp is Terminating; a status.observedGeneration that differs from
    metadata.generation is InProgress; the first of Reconciling=True (InProgress) or Stalled=True (Failed) in
    the condition list decides; then Ready (True: Current, False or Unknown: InProgress); else Current.
    """
    metadata = obj.get("metadata") or {}
    if metadata.get("deletionTimestamp"):
        return Health("Terminating", "Resource scheduled for deletion")
    generation, observed = metadata.get("generation"), (obj.get("status") or {}).get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return Health("InProgress", f"{obj['kind']} generation is {generation}, but latest observed generation "
                                    f"is {observed}")  # fmt: skip
    for condition in _conditions(obj):
        if condition.get("status") == "True" and condition.get("type") in ("Reconciling", "Stalled"):
            verdict = "InProgress" if condition["type"] == "Reconciling" else "Failed"
            return Health(verdict, str(condition.get("message") or ""))
    for condition in _conditions(obj):
        if condition.get("type") == "Ready" and condition.get("status") in ("True", "False", "Unknown"):
            if condition["status"] == "True":
                return Health("Current", "Resource is Ready")
            return Health("InProgress", str(condition.get("message") or ""))
    return Health("Current", "Resource is current")
