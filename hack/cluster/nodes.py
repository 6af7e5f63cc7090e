"""Create or update simulated (kwok) GPU nodes for every GPUNodePool in a file.

Each node carries what the NVIDIA GPU feature discovery or the AMD GPU node labeller would publish on a real
node (product, count, memory, family), the pool label, the GPU taint, and the GPU resource in capacity and
allocatable. kwok keeps the status it is created with and marks the node Ready. Running it again brings
existing nodes to what the file says and writes nothing when they already match.

Usage: python hack/cluster/nodes.py POOLS.yaml [--kubeconfig PATH]
"""

import argparse
import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GPUS_FILE = REPO / "operator" / "modelplane" / "catalog" / "data" / "gpus.yaml"
MIB = 1024 * 1024
# The operator's modelplane.api.contract.POOL_LABEL; this script runs without the package installed.
POOL_LABEL = "modelplane.dev/pool"
# Labels this script owns on a simulated node: one in these namespaces that the pool file no longer implies
# (the pool changed GPU vendor, say) is removed. Other labels (a test's, an admin's) are left alone.
OWNED_LABEL_PREFIXES = ("nvidia.com/gpu.", "amd.com/gpu.", "beta.amd.com/gpu.", "modelplane.dev/")
GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")
# The amdgpu driver's family name, which the AMD node labeller publishes as amd.com/gpu.family: every gfx9
# part (MI210's gfx90a, MI300X's gfx942) is "AI"; AMD's device-plugin docs show family=AI for MI300X.
AMD_FAMILIES = {"gfx9": "AI"}
QUANTITY_SUFFIXES = {
    **{suffix: Fraction(1024) ** power for power, suffix in enumerate(("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{suffix: Fraction(1000) ** power for power, suffix in enumerate(("k", "M", "G", "T", "P", "E"), 1)},
    "m": Fraction(1, 1000),
}


def amd_family(gfx_arch: str) -> str:
    return AMD_FAMILIES[gfx_arch[:4]]


def amd_labeller_labels(values: dict[str, str], count: int) -> dict[str, str]:
    """Labels the AMD node labeller publishes for properties that all of a node's GPUs share.

    ROCm/k8s-device-plugin cmd/k8s-node-labeller/main.go, createLabels: for a property with one value on the
    node it sets amd.com/gpu.<property>=<value>, beta.amd.com/gpu.<property>=<value> and
    beta.amd.com/gpu.<property>.<value>=<number of GPUs with that value>. The last is the labeller's only
    GPU count; it has no counterpart of nvidia.com/gpu.count.
    """
    labels: dict[str, str] = {}
    for name, value in values.items():
        labels[f"amd.com/gpu.{name}"] = value
        labels[f"beta.amd.com/gpu.{name}"] = value
        labels[f"beta.amd.com/gpu.{name}.{value}"] = str(count)
    return labels


def gpu_labels(gpu: dict[str, Any], count: int) -> dict[str, str]:
    """Labels as NVIDIA GPU feature discovery or the AMD node labeller publish them.

    NVIDIA (GFD, internal/lm/resource.go): product is nvidia-smi's name with spaces as '-', memory in MiB,
    family is derived from the compute capability ("ada-lovelace", with the hyphen). AMD (k8s-node-labeller):
    product-name with '_', VRAM rounded to whole GiB with a "G" suffix, the driver's family acronym.
    """
    if gpu["vendor"] == "amd":
        return amd_labeller_labels(
            {
                "product-name": gpu["productLabels"][0],
                "family": amd_family(gpu["gfxArch"]),
                "vram": f"{round(gpu['memoryBytes'] / (1024 * MIB))}G",
            },
            count,
        )
    major, minor = gpu["computeCapability"].split(".")
    return {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": gpu["productLabels"][0],
        "nvidia.com/gpu.count": str(count),
        "nvidia.com/gpu.memory": str(gpu["memoryBytes"] // MIB),
        "nvidia.com/gpu.family": gpu["architecture"],
        "nvidia.com/gpu.compute.major": major,
        "nvidia.com/gpu.compute.minor": minor,
    }


def node(pool: dict[str, Any], index: int, gpu: dict[str, Any]) -> dict[str, Any]:
    spec = pool["spec"]
    pool_name = pool["metadata"]["name"]
    name = f"{pool_name}-{index}"
    selector: dict[str, str] = spec.get("nodeSelector") or {}
    if selector.get(POOL_LABEL, pool_name) != pool_name:
        raise ValueError(f"pool {pool_name}: nodeSelector {POOL_LABEL}={selector[POOL_LABEL]} names another pool")
    count = int(spec["gpusPerNode"])
    resource = gpu["resourceName"]
    # Ephemeral storage: servers without a model cache request what their download fills (render/weights.py). A
    # DGX H100 carries 30 TB of data NVMe for 8 GPUs (NVIDIA DGX H100 datasheet, "Internal storage"); the
    # simulated nodes claim 1 TiB per GPU, which holds any catalog checkpoint the node's GPUs can serve.
    resources = {"cpu": str(16 * count), "memory": f"{128 * count}Gi", "ephemeral-storage": f"{count}Ti",
                 "pods": "110", resource: str(count)}  # fmt: skip
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "type": "kwok",
        "modelplane.dev/location": spec["location"],
        # Discovery groups nodes by this label whether or not the pool selects on it.
        POOL_LABEL: pool_name,
        **selector,
        **gpu_labels(gpu, count),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
        },
        "spec": {"taints": [{"key": resource, "value": "present", "effect": "NoSchedule"}]},
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "phase": "Running",
        },
    }


def nodes_for(pools_file: Path) -> list[dict[str, Any]]:
    gpus = {gpu["id"]: gpu for gpu in yaml.safe_load(GPUS_FILE.read_text())["gpus"]}
    result: list[dict[str, Any]] = []
    for document in yaml.safe_load_all(pools_file.read_text()):
        if not document or document.get("kind") != "GPUNodePool":
            continue
        gpu = gpus[document["spec"]["gpu"]]
        result.extend(node(document, index, gpu) for index in range(int(document["spec"]["nodes"])))
    return result


def quantity(text: str) -> Fraction:
    """A Kubernetes quantity's value: the API server returns "1Ti" for the "1024Gi" we send."""
    match = re.fullmatch(r"([0-9.eE+-]+?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?", text)
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    return Fraction(match[1]) * QUANTITY_SUFFIXES[match[2] or ""]


def metadata_patch(desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch that gives an existing node the labels, annotations and GPU taint it should have."""
    metadata: dict[str, Any] = {}
    for field in ("labels", "annotations"):
        want: dict[str, str] = desired["metadata"][field]
        have: dict[str, str] = current["metadata"].get(field) or {}
        changes: dict[str, str | None] = {key: value for key, value in want.items() if have.get(key) != value}
        if field == "labels":
            changes |= {key: None for key in have if key.startswith(OWNED_LABEL_PREFIXES) and key not in want}
        if changes:
            metadata[field] = changes
    patch: dict[str, Any] = {"metadata": metadata} if metadata else {}
    # A merge patch replaces the whole list, so taints others added (node.kubernetes.io/not-ready) are kept.
    want_taints: list[dict[str, str]] = desired["spec"]["taints"]
    have_taints: list[dict[str, str]] = current["spec"].get("taints") or []
    others = [taint for taint in have_taints if taint["key"] not in GPU_RESOURCES]
    gpu_taints = [{key: taint.get(key) for key in ("key", "value", "effect")} for taint in have_taints
                  if taint["key"] in GPU_RESOURCES]  # fmt: skip
    if gpu_taints != want_taints:
        patch["spec"] = {"taints": want_taints + others}
    return patch or None


def status_patch(desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch of the status subresource that gives a node the capacity it should have."""
    status: dict[str, Any] = {}
    for field in ("capacity", "allocatable"):
        want: dict[str, str] = desired["status"][field]
        have: dict[str, str] = (current.get("status") or {}).get(field) or {}
        changes: dict[str, str | None] = {
            key: value for key, value in want.items() if key not in have or quantity(have[key]) != quantity(value)
        }
        changes |= {key: None for key in have if key in GPU_RESOURCES and key not in want}
        if changes:
            status[field] = changes
    return {"status": status} if status else None


def run(kubectl: list[str], *args: str, document: str | None = None) -> str:
    result = subprocess.run([*kubectl, *args], input=document, text=True, capture_output=True)
    if result.returncode:
        sys.exit(f"kubectl {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pools", type=Path)
    parser.add_argument("--kubeconfig", default=None)
    args = parser.parse_args()
    kubectl = ["kubectl", *(["--kubeconfig", args.kubeconfig] if args.kubeconfig else [])]
    items = nodes_for(args.pools)
    existing = {
        item["metadata"]["name"]: item for item in json.loads(run(kubectl, "get", "nodes", "-o", "json"))["items"]
    }
    missing = [item for item in items if item["metadata"]["name"] not in existing]
    if missing:
        # `create` keeps the status we send, which is how kwok's docs create nodes; apply would drop it.
        run(kubectl, "create", "-f", "-", document=json.dumps({"apiVersion": "v1", "kind": "List", "items": missing}))
    updated = 0
    for item in items:
        current = existing.get(item["metadata"]["name"])
        if current is None:
            continue
        name = item["metadata"]["name"]
        patches = [([], metadata_patch(item, current)), (["--subresource=status"], status_patch(item, current))]
        for flags, patch in patches:
            if patch is not None:
                run(kubectl, "patch", "node", name, *flags, "--type=merge", "-p", json.dumps(patch))
        updated += any(patch is not None for _, patch in patches)
    print(f"{len(items)} simulated GPU nodes from {args.pools}: {len(missing)} created, {updated} updated")


if __name__ == "__main__":
    main()
