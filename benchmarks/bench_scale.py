"""Issue 6 at full size: 1,000 ModelDeployments on the local control plane against a plain apply baseline.

Run (the local cluster is started if it is not up): .venv/bin/python -m benchmarks.bench_scale
Options: --deployments N (default 1000), --soak-minutes M (default 15), --deadline S (default 900: seconds for
each phase to converge), --json FILE.

Exits 1, naming what failed, when a phase misses its deadline (listing the deployments left without a current
status) or a goal is missed: operator/baseline time to all Ready ≤ 1.0, mutating requests per deployment ≤ its
children + 2, 0 writes after a restart and during the soak, RSS ≤ 300 MB for a fresh process and for the one
that converged the burst, RSS growth over the soak < 5 %.

1. Baseline: `modelplane render` of every deployment, then one `kubectl apply --server-side` of the
   result; time until every rendered Deployment is Available. Then the namespaces are deleted and the
   benchmark waits until their pods are gone, so both runs get the same empty GPUs.
2. Operator: the operator runs as a process with exactly the Helm chart's RBAC; one `kubectl apply
   --server-side` of the ModelDeployments; time until all are Planned with their children applied, and
   until all are Ready.
3. API writes, from the API server's audit log: mutating requests of the operator's ServiceAccount by verb
   and resource, per ModelDeployment. Then the operator is restarted and left alone for a resync window:
   it must make 0 mutating requests (the benchmark exits 1 otherwise).
4. Memory: the operator's RSS after convergence and over an idle soak.
5. Burst (issue 16): with all 1,000 serving, one deployment takes its pool's headroom (untimed), then
   BURSTS deployments in turn get two replicas more than their pool holds through `/scale`; each is timed from
   the write until its burst workload (`NAME-bench-burst`, on a pricier pool every deployment allows but none
   is planned on) is applied with both replicas. Goal: every one under 2 s.

Every deployment names its pool (`placement.pools`), so `modelplane render` (which plans each deployment
against the whole pool) and the operator (which plans against free capacity) place it identically. Pools
are sized from the plans with 10 % headroom.
"""

import argparse
import functools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from modelplane.api.documents import parse_object
from modelplane.api.gpu_node_pool import GPUNodePool
from modelplane.api.model_deployment import ModelDeployment
from modelplane.kube.errors import GoneError
from modelplane.kube.objects import request
from modelplane.planning.service import offers_for, plan_deployment
from tests.e2e.operator_support import (
    GROUP,
    OPERATOR_USER,
    VERSION,
    audit_writes,
    chart_service_account_kubeconfig,
    now,
    operator_quiet,
    running_operator,
    wait_for,
)

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "hack" / "cluster" / "cluster.sh"
NODES = REPO / "hack" / "cluster" / "nodes.py"
NAMESPACES = 20
GPUS_PER_NODE = 8
HEADROOM = 1.10
RESYNC_WINDOW_SECONDS = 90  # longer than the pool-status pass (20 s) and kopf's idle watch reconnects
SOAK_SAMPLE_SECONDS = 60
QUIET_SECONDS = 45
POLL_SECONDS = 2.0
"""How often the phases are checked: each check lists 1,000 ModelDeployments and 1,000 Deployments (about 1.3 s of
API server and client time here), which every 0.25 s took a core from the 2 being measured; 2 s is a 1 % resolution
on phases of minutes."""
GOAL_RATIO = 1.0
GOAL_RSS_BYTES = 300_000_000
GOAL_GROWTH_PERCENT = 5.0
GOAL_BURST_SECONDS = 2.0
BURSTS = 10
BURST_POOL = ("bench-burst", "H100-SXM-80GB", 4)
"""Every deployment may burst here, and none is planned here: at 3.00 per GPU-hour it is never the cheapest."""
# (pool, GPU, share of deployments, models served there)
MIX: list[tuple[str, str, float, list[str]]] = [
    ("bench-l4", "L4-24GB", 0.40, ["meta-llama/Llama-3.2-3B-Instruct", "Qwen/Qwen2.5-7B-Instruct"]),
    ("bench-l40s", "L40S-48GB", 0.25, ["meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3"]),
    ("bench-a100", "A100-SXM-80GB", 0.20, ["Qwen/Qwen2.5-14B-Instruct", "google/gemma-2-9b-it"]),
    ("bench-h100", "H100-SXM-80GB", 0.15, ["mistralai/Mistral-Small-24B-Instruct-2501"]),
]


def run(*args: str, input: str | None = None) -> str:
    return subprocess.run(args, input=input, text=True, capture_output=True, check=True).stdout


def model_deployments(count: int, prefix: str) -> list[dict[str, Any]]:
    bodies = []
    for index in range(count):
        position, share_end = index / count, 0.0
        for pool, _, share, models in MIX:  # noqa: B007 (the pool and models the loop stops at are used)
            share_end += share
            if position < share_end or pool == MIX[-1][0]:
                break
        bodies.append({
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment",
            "metadata": {"name": f"md-{index:04d}", "namespace": f"{prefix}-{index % NAMESPACES:02d}"},
            "spec": {"model": {"name": models[index % len(models)]}, "maxModelLen": 4096,
                     "placement": {"pools": [pool, BURST_POOL[0]]}},
        })  # fmt: skip
    return bodies


def sized_pools(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """GPUNodePools large enough for every plan, with headroom; fails early if a deployment is infeasible."""
    generous = [pool_body(pool, gpu, 10_000) for pool, gpu, _, _ in MIX] + [pool_body(*BURST_POOL, cost="3.00")]
    offers = offers_for([parsed(body, GPUNodePool) for body in generous])
    needed: Counter[str] = Counter()
    for body in bodies:
        result = plan_deployment(parsed(body, ModelDeployment), offers)
        if result.plan is None:
            sys.exit(f"{body['metadata']['name']} is infeasible: {result.reasons}")
        needed[result.plan.pool] += result.plan.gpus_per_replica * result.plan.replicas
    if needed[BURST_POOL[0]]:
        sys.exit(f"{needed[BURST_POOL[0]]} GPUs planned on {BURST_POOL[0]}, which must only take bursts")
    sized = [pool_body(pool, gpu, -(-int(needed[pool] * HEADROOM) // GPUS_PER_NODE)) for pool, gpu, _, _ in MIX]
    return [*sized, pool_body(*BURST_POOL, cost="3.00")]


def pool_body(name: str, gpu: str, nodes: int, cost: str = "1.00") -> dict[str, Any]:
    resource = "nvidia.com/gpu"
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "GPUNodePool", "metadata": {"name": name},
        "spec": {"gpu": gpu, "gpusPerNode": GPUS_PER_NODE, "nodes": nodes, "location": "cloud",
                 "costPerGpuHour": cost, "nodeSelector": {"modelplane.dev/pool": name},
                 "tolerations": [{"key": resource, "operator": "Exists", "effect": "NoSchedule"}]},
    }  # fmt: skip


def parsed(body: dict[str, Any], kind: type[Any]) -> Any:
    obj = parse_object(body, "bench")
    assert isinstance(obj, kind)
    return obj


class Bench:
    def __init__(self, kubeconfig: Path, logs: Path, workdir: Path) -> None:
        self.kubeconfig, self.logs, self.workdir = kubeconfig, logs, workdir
        api = config.new_client_from_config(config_file=str(kubeconfig))
        api.configuration.connection_pool_maxsize = 8
        self.api = api
        self.custom, self.apps, self.core = client.CustomObjectsApi(api), client.AppsV1Api(api), client.CoreV1Api(api)

    def items(self, path: str, selector: str | None = None) -> list[dict[str, Any]]:
        """A list as plain JSON: the client's typed models cost seconds of CPU per 1,000 Deployments, which the
        polls below took from the API server and the operator on the 2 cores being measured."""
        found: list[dict[str, Any]] = request(
            self.api, f"list {path}", "GET", path, query=[("labelSelector", selector)] if selector else []
        )["items"]
        return found

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        """What `kubectl scale`, HPA and KEDA do: a merge patch of the scale subresource."""
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/modeldeployments/{name}/scale"
        request(self.api, f"scale {namespace}/{name}", "PATCH", path, body={"spec": {"replicas": replicas}},
                headers={"Content-Type": "application/merge-patch+json"})  # fmt: skip

    def workload_replicas(self, namespace: str, name: str) -> int | None:
        try:
            found = request(self.api, f"get {name}", "GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        except GoneError:
            return None
        return int(found["spec"].get("replicas", 1))

    def pool_free(self, pool: str) -> int:
        found = request(self.api, f"get {pool}", "GET", f"/apis/{GROUP}/{VERSION}/gpunodepools/{pool}")
        return int((found.get("status") or {}).get("freeGpus", 0))

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return run("kubectl", f"--kubeconfig={self.kubeconfig}", *args, input=input)

    def apply(self, documents: list[dict[str, Any]]) -> None:
        path = self.workdir / f"apply-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump_all(documents))
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))

    def create_namespaces(self, prefix: str) -> list[str]:
        names = [f"{prefix}-{index:02d}" for index in range(NAMESPACES)]
        self.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}} for name in names])
        return names

    def delete_namespaces(self, names: list[str]) -> None:
        self.kubectl("delete", "namespace", *names, "--wait=false")
        wait_for(lambda: not [ns for ns in self.core.list_namespace().items if ns.metadata.name in names], 900,
                 "benchmark namespaces to be deleted")  # fmt: skip

    def deployments_available(self, names: list[str], count: int) -> bool:
        available = 0
        for item in self.items("/apis/apps/v1/deployments", "app.kubernetes.io/managed-by"):
            status, spec = item.get("status") or {}, item.get("spec") or {}
            if item["metadata"]["namespace"] in names and status.get("availableReplicas", 0) >= spec.get("replicas", 1):
                available += 1
        return available >= count

    def unsettled(self, names: list[str]) -> list[str]:
        """The ModelDeployments of the benchmark namespaces that are not Ready at their current generation."""
        items = self.custom.list_cluster_custom_object(GROUP, VERSION, "modeldeployments")["items"]
        left = []
        for md in items:
            metadata, status = md["metadata"], md.get("status") or {}
            if metadata["namespace"] not in names:
                continue
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            ready = conditions.get("Ready", {})
            if status.get("observedGeneration") != metadata.get("generation") or ready.get("status") != "True":
                state = f"Ready={ready.get('status')} ({ready.get('reason')})" if status else "no status"
                left.append(f"{metadata['namespace']}/{metadata['name']}: {state}")
        return sorted(left)

    def model_deployment_states(self, names: list[str]) -> tuple[int, int]:
        """(planned with children applied, ready) over the benchmark namespaces."""
        items = self.items(f"/apis/{GROUP}/{VERSION}/modeldeployments")
        workloads = self.items("/apis/apps/v1/deployments", "modelplane.dev/deployment")
        children = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in workloads}
        planned = ready = 0
        for md in items:
            metadata = md["metadata"]
            if metadata["namespace"] not in names:
                continue
            status = md.get("status") or {}
            conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
            current = status.get("observedGeneration") == metadata.get("generation")
            if (
                current
                and conditions.get("Planned") == "True"
                and (metadata["namespace"], metadata["name"]) in children
            ):
                planned += 1
            if current and conditions.get("Ready") == "True":
                ready += 1
        return planned, ready


def burst_latencies(bench: Bench, bodies: list[dict[str, Any]], deadline: float) -> list[float]:
    """Phase 5: seconds from each `/scale` write to its burst workload applied with the two extra replicas."""
    on_l4 = [body["metadata"] for body in bodies if body["spec"]["placement"]["pools"][0] == MIX[0][0]]
    filler = on_l4[0]
    # Take the pool's headroom first (sticky placement fills the plan's pool before it bursts), untimed; its own
    # surplus bursts too, so wait for that to settle.
    headroom = bench.pool_free(MIX[0][0])
    bench.scale(filler["namespace"], filler["name"], 1 + headroom)
    wait_for(lambda: bench.pool_free(MIX[0][0]) == 0, deadline, f"{MIX[0][0]}'s headroom to be taken")
    latencies = []
    for metadata in on_l4[1 : 1 + BURSTS]:
        workload = f"{metadata['name']}-{BURST_POOL[0]}"
        started = time.monotonic()
        bench.scale(metadata["namespace"], metadata["name"], 3)
        wait_for(lambda: bench.workload_replicas(metadata["namespace"], workload) == 2, deadline,  # noqa: B023
                 f"{workload} applied with 2 replicas", interval=0.02)  # fmt: skip
        latencies.append(time.monotonic() - started)
    return latencies


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def timed(check: Any, timeout: float, message: str, started: float, unsettled: Any = None) -> float:
    """Seconds from `started` until `check` holds; past `timeout`, exit 1 naming what was left (`unsettled`)."""
    try:
        wait_for(check, timeout, message, interval=POLL_SECONDS)
    except AssertionError as error:
        left = unsettled() if unsettled is not None else []
        shown = "".join(f"\n  {line}" for line in left[:20]) + (
            f"\n  ... {len(left) - 20} more" if len(left) > 20 else ""
        )
        sys.exit(f"FAIL: {error}; {len(left)} left:{shown}" if left else f"FAIL: {error}")
    return time.monotonic() - started


def missed_goals(results: dict[str, Any]) -> list[str]:
    """Every goal of the benchmark the results miss, in words."""
    ratio, writes = results["ratioReady"], results["writesPerDeployment"]
    # The children of one deployment, as `modelplane render` made them for the baseline (NetworkPolicy, Service,
    # Deployment today): counted, not assumed, so a new child kind moves the budget with it.
    children = results["baselineObjects"] / results["deployments"]
    burst, fresh = results["rssAfterConvergenceBytes"], results["rssSoakBytes"][0]
    growth, limit = results["rssGrowthPercent"], GOAL_RSS_BYTES / 1e6
    checks = [
        (ratio <= GOAL_RATIO, f"operator/baseline all Ready {ratio:.2f} > {GOAL_RATIO}"),
        (writes <= children + 2, f"{writes:.2f} writes per deployment > children ({children:g}) + 2"),
        (results["writesAfterRestart"] == 0, f"{results['writesAfterRestart']} writes after a restart"),
        (results["soakWrites"] == 0, f"{results['soakWrites']} writes during the soak"),
        (burst <= GOAL_RSS_BYTES, f"RSS after the burst {burst / 1e6:.0f} MB > {limit:.0f} MB"),
        (fresh <= GOAL_RSS_BYTES, f"RSS of a fresh process {fresh / 1e6:.0f} MB > {limit:.0f} MB"),
        (growth < GOAL_GROWTH_PERCENT, f"RSS grew {growth:.1f} % over the soak"),
        (max(results["burstAppliedSeconds"]) < GOAL_BURST_SECONDS,
         f"a burst took {max(results['burstAppliedSeconds']):.2f} s from /scale to applied"),
    ]  # fmt: skip
    return [message for met, message in checks if not met]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--soak-minutes", type=float, default=15)
    parser.add_argument("--deadline", type=float, default=900)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    count = args.deployments

    subprocess.run([str(CLUSTER), "up"], check=True)
    kubeconfig = Path(run(str(CLUSTER), "env").split("=", 1)[1].strip())
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    bench = Bench(kubeconfig, kubeconfig.parent / "logs", workdir)
    for crd in sorted((REPO / "crds").glob("*.yaml")):
        bench.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    bench.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")

    sizing = sized_pools(model_deployments(count, "bench"))
    pools_file = workdir / "pools.yaml"
    pools_file.write_text(yaml.safe_dump_all(sizing))
    bench.apply(sizing)
    run(sys.executable, str(NODES), str(pools_file), "--kubeconfig", str(kubeconfig))
    nodes = sum(int(pool["spec"]["nodes"]) for pool in sizing)
    print(f"{count} deployments over {NAMESPACES} namespaces; pools: "
          + ", ".join(f"{p['metadata']['name']} {p['spec']['nodes']}×{GPUS_PER_NODE}" for p in sizing))  # fmt: skip
    results: dict[str, Any] = {"deployments": count, "namespaces": NAMESPACES, "gpuNodes": nodes}

    # 1. Baseline: the same objects rendered offline, applied by kubectl.
    base_bodies = model_deployments(count, "base")
    sources = workdir / "base-deployments.yaml"
    sources.write_text(yaml.safe_dump_all(base_bodies))
    rendered = run(sys.executable, "-m", "modelplane", "render", str(sources), "--pools", str(pools_file), "-o", "-")
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    base_namespaces = bench.create_namespaces("base")
    started = time.monotonic()
    bench.apply(objects)
    results["baselineApplySeconds"] = time.monotonic() - started
    results["baselineReadySeconds"] = timed(lambda: bench.deployments_available(base_namespaces, count),
                                            args.deadline, "baseline Deployments Available", started)  # fmt: skip
    results["baselineObjects"] = len(objects)
    print(
        f"baseline: {len(objects)} objects applied in {results['baselineApplySeconds']:.1f} s, "
        f"all Available after {results['baselineReadySeconds']:.1f} s"
    )
    bench.delete_namespaces(base_namespaces)

    # 2. The operator.
    op_bodies = model_deployments(count, "bench")
    op_namespaces = bench.create_namespaces("bench")
    operator_config = chart_service_account_kubeconfig(kubeconfig, workdir)
    audit = bench.logs / "audit.log"
    log = bench.logs / "operator-bench.log"
    with running_operator(operator_config, log) as process:
        since = now()
        started = time.monotonic()
        bench.apply(op_bodies)
        results["operatorApplySeconds"] = time.monotonic() - started
        left = functools.partial(bench.unsettled, op_namespaces)
        deadline = args.deadline
        results["operatorPlannedSeconds"] = timed(lambda: bench.model_deployment_states(op_namespaces)[0] >= count,
                                                  deadline, "all Planned with children", started, left)  # fmt: skip
        results["operatorReadySeconds"] = timed(lambda: bench.model_deployment_states(op_namespaces)[1] >= count,
                                                deadline, "all Ready", started, left)  # fmt: skip
        print(
            f"operator: all Planned with children after {results['operatorPlannedSeconds']:.1f} s, "
            f"all Ready after {results['operatorReadySeconds']:.1f} s"
        )
        # Pool status is written on a 20 s pass; stopping before it ran would leave the restart a real change.
        wait_for(lambda: operator_quiet(audit, QUIET_SECONDS), 600, f"{QUIET_SECONDS} s without an operator write")
        writes = [
            w for w in audit_writes(audit, OPERATOR_USER, since) if w["objectRef"].get("namespace") in op_namespaces
        ]
        by_kind = Counter(f"{w['verb']} {w['objectRef']['resource']}"
                          + (f"/{w['objectRef']['subresource']}" if w["objectRef"].get("subresource") else "")
                          for w in writes)  # fmt: skip
        results["writesByVerbAndResource"] = dict(sorted(by_kind.items()))
        results["writesPerDeployment"] = len(writes) / count
        results["rssAfterConvergenceBytes"] = rss_bytes(process.pid)
    print(f"writes: {results['writesPerDeployment']:.2f} per deployment: {results['writesByVerbAndResource']}")

    # 3. A restart and a resync window with nothing changed: zero writes.
    with running_operator(operator_config, log) as process:
        since = now()
        time.sleep(RESYNC_WINDOW_SECONDS)
        idle_writes = audit_writes(audit, OPERATOR_USER, since)
        results["writesAfterRestart"] = len(idle_writes)
        print(f"after a restart and {RESYNC_WINDOW_SECONDS} s: {len(idle_writes)} writes")
        # 4. Memory over an idle soak, 1,000 deployments and their children watched.
        samples = [rss_bytes(process.pid)]
        deadline = time.monotonic() + args.soak_minutes * 60
        while time.monotonic() < deadline:
            time.sleep(SOAK_SAMPLE_SECONDS)
            samples.append(rss_bytes(process.pid))
        results["soakMinutes"] = args.soak_minutes
        results["rssSoakBytes"] = samples
        results["rssGrowthPercent"] = (samples[-1] - samples[0]) / samples[0] * 100
        results["soakWrites"] = len(audit_writes(audit, OPERATOR_USER, since))
        # 5. Bursts beyond the plans' pools, with 1,000 deployments watched.
        latencies = burst_latencies(bench, op_bodies, args.deadline)
        results["burstAppliedSeconds"] = [round(seconds, 3) for seconds in latencies]
        print(f"bursts: /scale to burst workload applied, median {statistics.median(latencies):.2f} s, "
              f"max {max(latencies):.2f} s over {len(latencies)}")  # fmt: skip
    results["ratioReady"] = results["operatorReadySeconds"] / results["baselineReadySeconds"]
    print(
        f"RSS {samples[0] / 2**20:.0f} MiB → {samples[-1] / 2**20:.0f} MiB over {args.soak_minutes} min "
        f"({results['rssGrowthPercent']:+.1f} %, median {statistics.median(samples) / 2**20:.0f} MiB); "
        f"writes during the soak: {results['soakWrites']}"
    )
    print(f"operator / baseline (all Ready): {results['ratioReady']:.2f}")
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    bench.delete_namespaces(op_namespaces)
    for pool in sizing:
        name = pool["metadata"]["name"]
        bench.kubectl("delete", "gpunodepool", name)
        bench.kubectl("delete", "nodes", "-l", f"modelplane.dev/pool={name}")
    missed = missed_goals(results)
    if missed:
        sys.exit("FAIL: " + "; ".join(missed))


if __name__ == "__main__":
    main()
