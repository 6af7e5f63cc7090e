"""`make demo` as a user runs it: hack/demo.sh up, then down, on a cluster of its own (its own state directory and
ports), so it runs next to the session cluster of the other end-to-end tests and uses none of their fixtures."""

import base64
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "hack" / "demo.sh"
STATE = Path("/tmp/modelplane-demo-e2e")
# Clear of the session cluster (16443, 12379-12380, 20247-20259), the test cluster (21247-21443) and the benchmark
# cluster's ports, and below Linux's ephemeral range (32768-60999): a port there can be the local end of one of the
# suite's many client connections when the demo binds it (its operator once failed to start there, cause unlogged).
PORTS = {
    "MODELPLANE_APISERVER_PORT": 22443,
    "MODELPLANE_ETCD_PORT": 22379,  # and 22380 for peers
    "MODELPLANE_KCM_PORT": 22257,
    "MODELPLANE_SCHEDULER_PORT": 22259,
    "MODELPLANE_KWOK_PORT": 22247,
    "MODELPLANE_LWS_PORT": 22249,  # and 22250 for its health probes
    "MODELPLANE_KEDA_PORT": 22251,  # KEDA's gRPC metrics service, and 22252 for its health probes
    "MODELPLANE_DEMO_LIVENESS_PORT": 28080,
    "MODELPLANE_DEMO_METRICS_PORT": 29090,
}
# The examples' README-documented outcomes, as (READY, REASON) of the demo's table. llama-405b is served either on
# a whole H200 server or across nodes by a LeaderWorkerSet (the cluster runs the LWS controller): Ready either way.
SETTLED = {
    "research/llama-405b": ("True", "Available"),
    "chat/llama-8b": ("True", "Available"),
    "chat/llama-70b": ("True", "Available"),
    "chat/qwen-7b-trt": ("True", "Available"),
    "research/deepseek-v3": ("True", "Available"),
    "research/mixtral-review": ("True", "PlanOnly"),
    "research/llama-405b-onprem": ("False", "NotPlanned"),
}


def demo(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("KUBECONFIG", "MODELPLANE_POOLS")}
    environment |= {name: str(port) for name, port in PORTS.items()}
    environment |= {"MODELPLANE_CLUSTER_DIR": str(STATE), "VENV": sys.prefix}
    return subprocess.run([str(DEMO), command], cwd=REPO, env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)  # fmt: skip


def decision_table(output: str) -> dict[str, dict[str, str]]:
    """The demo's table of what the operator decided, by deployment; every cell but the last note is one word."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("DEPLOYMENT "))
    header = lines[start].split()
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = line.split(maxsplit=len(header))
        rows[cells[0]] = dict(zip([*header, "NOTE"], cells, strict=False))
    return rows


def running(pids: Iterable[int]) -> dict[int, bytes]:
    """Command lines of those of the processes that run (a zombie's is empty), by pid."""
    found = {}
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline:
            found[pid] = cmdline
    return found


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
        return body.decode()


def test_make_demo_settles_every_example_and_stops_cleanly() -> None:
    pids: dict[str, int] = {}
    try:
        # The first run of all builds the binaries (~10 minutes); after the other e2e tests they are cached.
        up = demo("up", timeout=900)
        pids = {pid_file.stem: int(pid_file.read_text()) for pid_file in (STATE / "pids").glob("*.pid")}
        assert up.returncode == 0, up.stdout
        rows = decision_table(up.stdout)
        assert set(rows) == set(SETTLED), up.stdout
        assert {name: (rows[name]["READY"], rows[name]["REASON"]) for name in SETTLED} == SETTLED, up.stdout
        assert rows["research/llama-405b-onprem"]["POOL"] == "-"
        assert {"operator", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok",
                "lws-controller"} <= set(pids)  # fmt: skip
        for line in (f"export KUBECONFIG={STATE}/kubeconfig", "modelplane explain md/NAME -n NAMESPACE",
                     f"curl -s http://127.0.0.1:{PORTS['MODELPLANE_DEMO_METRICS_PORT']}/metrics",
                     f"Stop everything with: MODELPLANE_CLUSTER_DIR={STATE} make demo-down"):  # fmt: skip
            assert line in up.stdout
        # The ports the help text names are the operator's.
        assert "modelplane_plans_total" in http_get(f"http://127.0.0.1:{PORTS['MODELPLANE_DEMO_METRICS_PORT']}/metrics")
        http_get(f"http://127.0.0.1:{PORTS['MODELPLANE_DEMO_LIVENESS_PORT']}/healthz")
        token = subprocess.run(["kubectl", f"--kubeconfig={STATE / 'kubeconfig'}", "-n", "chat", "get", "secret",
                                "hf-token", "-o", "jsonpath={.data.token}"], check=True, capture_output=True,
                               text=True).stdout  # fmt: skip
        assert base64.b64decode(token).decode() not in up.stdout
    finally:
        started = running(pids.values())
        down = demo("down", timeout=120)
    assert down.returncode == 0, down.stdout
    assert not STATE.exists()
    # A pid alive under another command line was reused by someone else, not left behind by the demo.
    assert {pid: cmdline for pid, cmdline in running(pids.values()).items() if started.get(pid) == cmdline} == {}
    ports = [
        *PORTS.values(),
        PORTS["MODELPLANE_ETCD_PORT"] + 1,
        PORTS["MODELPLANE_LWS_PORT"] + 1,
        PORTS["MODELPLANE_KEDA_PORT"] + 1,
    ]
    assert [port for port in ports if listening(port)] == []
