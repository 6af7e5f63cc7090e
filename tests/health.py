"""How Argo CD and Flux judge our objects, computed by their own code: hack/health/main.go runs the chart's Lua
health checks through Argo CD's util/lua (gopher-lua, with the libraries Argo CD opens) and computes kstatus
with sigs.k8s.io/cli-utils, both at the versions pinned in hack/cluster/versions.env.

Shared by the unit tests (status fixtures, operator decisions) and the end-to-end tests (live objects).
"""

import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ARGOCD = REPO / "charts" / "modelplane" / "argocd"
HEALTH_SCRIPTS = {"ModelDeployment": ARGOCD / "modeldeployment-health.lua",
                  "GPUNodePool": ARGOCD / "gpunodepool-health.lua"}  # fmt: skip
GROUP = "modelplane.dev"


@dataclass(frozen=True)
class Health:
    status: str
    message: str


@functools.cache
def health_binary() -> Path:
    """The program, built (or found in the cache) by hack/cluster/build.sh, which waits for any build under way."""
    built = subprocess.run([str(REPO / "hack" / "cluster" / "build.sh")], capture_output=True, text=True)
    if built.returncode:
        raise RuntimeError(f"hack/cluster/build.sh failed:\n{built.stderr[-3000:]}")
    paths = dict(line.split("=", 1) for line in built.stdout.splitlines() if "=" in line)
    return Path(paths["HEALTH_BIN"]) / "modelplane-health"


def judge(objects: list[dict[str, Any]]) -> list[dict[str, Health]]:
    """Argo CD's and kstatus's verdicts on each object, by "argocd" and "kstatus"; a library error fails."""
    scripts = [f"--script={GROUP}/{kind}={path}" for kind, path in HEALTH_SCRIPTS.items()]
    ran = subprocess.run([str(health_binary()), *scripts], input=json.dumps(objects), capture_output=True,
                         text=True, check=True)  # fmt: skip
    verdicts: list[dict[str, dict[str, str]]] = json.loads(ran.stdout)
    for obj, verdict in zip(objects, verdicts, strict=True):
        errors = {name: found["error"] for name, found in verdict.items() if found.get("error")}
        if errors:
            raise AssertionError(f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}: {errors}")
    return [{name: Health(found["status"], found["message"]) for name, found in verdict.items()}
            for verdict in verdicts]  # fmt: skip


def argocd_health(obj: dict[str, Any]) -> Health:
    """Argo CD's health of `obj`: our script for its kind, run by Argo CD's util/lua."""
    return judge([obj])[0]["argocd"]


def kstatus(obj: dict[str, Any]) -> Health:
    """kstatus's `Compute` of `obj` (sigs.k8s.io/cli-utils pkg/kstatus/status), the status Flux waits on."""
    return judge([obj])[0]["kstatus"]
