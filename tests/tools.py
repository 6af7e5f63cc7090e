"""Paths of the binaries hack/cluster/build.sh builds into the cache (helm, for chart tests)."""

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VERSIONS = REPO / "hack" / "cluster" / "versions.env"


def pinned_version(name: str) -> str:
    for line in VERSIONS.read_text().splitlines():
        key, _, rest = line.partition("=")
        if key.strip() == name:
            return rest.split("#")[0].strip()
    raise KeyError(name)


def helm_binary() -> Path:
    """helm built by the cluster scripts (built now if the cache is cold)."""
    cache = Path(os.environ.get("MODELPLANE_CACHE", Path.home() / ".cache" / "modelplane"))
    helm = cache / "bin" / f"helm-{pinned_version('HELM_VERSION')}" / "helm"
    if not helm.exists():
        subprocess.run([str(REPO / "hack" / "cluster" / "build.sh")], check=True, capture_output=True)
    return helm


def module_crd(script: str) -> Path:
    """A CRD from its pinned Go module, as `hack/<script>` (lws-crd.sh, keda-crd.sh) finds it."""
    found = subprocess.run([str(REPO / "hack" / script)], check=True, capture_output=True, text=True).stdout
    return Path(found.strip())
