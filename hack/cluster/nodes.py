"""Create simulated (kwok) GPU nodes for every GPUNodePool in a file.

Each node carries what the NVIDIA GPU feature discovery or the AMD GPU operator's node labeller would
publish on a real node (product, count, memory, family), a pool label, the GPU taint, and the GPU resource
in capacity and allocatable. kwok keeps the status it is created with and marks the node Ready.

Usage: python hack/cluster/nodes.py POOLS.yaml [--kubeconfig PATH]
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GPUS_FILE = REPO / "operator" / "modelplane" / "catalog" / "data" / "gpus.yaml"
MIB = 1024 * 1024
# The amdgpu driver's family name, which the AMD node labeller publishes as amd.com/gpu.family: every gfx9
# part (MI210's gfx90a, MI300X's gfx942) is "AI"; AMD's device-plugin docs show family=AI for MI300X.
AMD_FAMILIES = {"gfx9": "AI"}


def amd_family(gfx_arch: str) -> str:
    return AMD_FAMILIES[gfx_arch[:4]]


def gpu_labels(gpu: dict[str, Any], count: int) -> dict[str, str]:
    """Labels as NVIDIA GPU feature discovery or the AMD GPU operator's node labeller publish them.

    NVIDIA (GFD, internal/lm/resource.go): product is nvidia-smi's name with spaces as '-', memory in MiB,
    family is derived from the compute capability ("ada-lovelace", with the hyphen). AMD (k8s-node-labeller):
    product-name with '_', VRAM rounded to whole GiB with a "G" suffix, the driver's family acronym.
    """
    if gpu["vendor"] == "amd":
        return {
            "amd.com/gpu.product-name": gpu["productLabels"][0],
            "amd.com/gpu.family": amd_family(gpu["gfxArch"]),
            "amd.com/gpu.vram": f"{round(gpu['memoryBytes'] / (1024 * MIB))}G",
        }
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
    name = f"{pool['metadata']['name']}-{index}"
    count = int(spec["gpusPerNode"])
    resource = gpu["resourceName"]
    resources = {"cpu": str(16 * count), "memory": f"{128 * count}Gi", "pods": "110", resource: str(count)}
    labels = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "type": "kwok",
        "modelplane.dev/location": spec["location"],
        **spec.get("nodeSelector", {}),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pools", type=Path)
    parser.add_argument("--kubeconfig", default=None)
    args = parser.parse_args()
    kubectl = ["kubectl", *(["--kubeconfig", args.kubeconfig] if args.kubeconfig else [])]
    items = nodes_for(args.pools)
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    # `create` keeps the status we send (kwok's documented way); existing nodes are left as they are.
    result = subprocess.run([*kubectl, "create", "-f", "-"], input=document, text=True, capture_output=True)
    if result.returncode and "AlreadyExists" not in result.stderr:
        sys.exit(f"creating nodes failed: {result.stderr}")
    print(f"{len(items)} simulated GPU nodes from {args.pools}")


if __name__ == "__main__":
    main()
