"""Run the operator as a real process against the local control plane, and wait on conditions."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.tools import helm_binary

T = TypeVar("T")
GROUP, VERSION = "modelplane.dev", "v1alpha1"
REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelplane"
OPERATOR_NAMESPACE = "modelplane-system"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:modelplane"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
"""With the default values, the Role is the model catalog's: configmaps in the operator's namespace."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def chart_rbac() -> list[dict[str, Any]]:
    """The chart's ServiceAccount, ClusterRole and Roles with their bindings as `helm template` renders them."""
    rendered = subprocess.run(
        [str(helm_binary()), "template", "modelplane", str(CHART), "--namespace", OPERATOR_NAMESPACE,
         "--set", "crds.enabled=false"], check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in RBAC_KINDS]


DENIAL = re.compile(r'cannot (\w+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)")?')


def denied_by_the_chart(log_line: str) -> bool:
    """Whether a logged 403 is one the chart's RBAC really does not grant: its ClusterRole, and its Roles in the
    namespace the request named. An API server that restarts refuses allowed requests for a moment (its RBAC
    caches are unsynced); those are not the chart's fault."""
    match = DENIAL.search(log_line)
    if match is None:
        return "forbidden: User" in log_line
    verb, resource, group, namespace = match.groups()
    rules = [rule for document in chart_rbac()
             if document["kind"] == "ClusterRole"
             or (document["kind"] == "Role" and document["metadata"].get("namespace") == namespace)
             for rule in document["rules"]]  # fmt: skip
    return not any(group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]
                   for rule in rules)  # fmt: skip


def chart_service_account_kubeconfig(admin_kubeconfig: Path, directory: Path) -> Path:
    """A kubeconfig for the chart's ServiceAccount, bound to exactly the chart's roles (applied now)."""
    kubectl = ["kubectl", f"--kubeconfig={admin_kubeconfig}"]
    rbac = chart_rbac()
    subprocess.run([*kubectl, "create", "namespace", OPERATOR_NAMESPACE], capture_output=True)
    subprocess.run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f", "-"], check=True,
                   input=json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}), capture_output=True,
                   text=True)  # fmt: skip
    account = next(d["metadata"]["name"] for d in rbac if d["kind"] == "ServiceAccount")
    token = subprocess.run([*kubectl, "create", "token", account, "-n", OPERATOR_NAMESPACE, "--duration=24h"],
                           check=True, capture_output=True, text=True).stdout  # fmt: skip
    return token_kubeconfig(admin_kubeconfig, token, account, directory / "kubeconfig")


def token_kubeconfig(admin_kubeconfig: Path, token: str, user: str, path: Path) -> Path:
    """A kubeconfig for the admin's cluster that authenticates with a ServiceAccount token, written to `path`."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": admin["clusters"], "current-context": "operator",
        "contexts": [{"name": "operator", "context": {"cluster": admin["clusters"][0]["name"], "user": user}}],
        "users": [{"name": user, "user": {"token": token.strip()}}],
    }))  # fmt: skip
    return path


def wait_for(
    check: Callable[[], T | None],
    timeout: float = 60,
    message: str = "condition",
    describe: Callable[[], object] | None = None,
    interval: float = 0.25,
) -> T:
    """Poll every `interval` seconds until `check` returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except ApiException as error:
            if error.status != 404:
                raise
            last = None
        if last:
            return last
        time.sleep(interval)
    state = f"; state: {describe()!r}" if describe else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last: {last!r}{state}")


@contextmanager
def operator_process(kubeconfig: Path, log_path: Path, args: list[str],
                     env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """`python -m modelplane.operator ARGS` with its own liveness and metrics ports, ready when /healthz answers."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelplane.operator", *args, f"--liveness=http://127.0.0.1:{port}/healthz"],
            env={**os.environ, "KUBECONFIG": str(kubeconfig), "MODELPLANE_METRICS_PORT": str(free_port()),
                 **(env or {})},
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"operator exited with {process.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                    return bool(response.status == 200)
            except OSError:
                return False

        try:
            wait_for(healthy, 60, "operator liveness")
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@contextmanager
def running_operator(kubeconfig: Path, log_path: Path, extra_args: tuple[str, ...] = (),
                     env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """The operator exactly as users run it, on every namespace: standalone unless `extra_args` set peering."""
    mode = list(extra_args) if any(arg.startswith("--peering") for arg in extra_args) else ["--standalone"]
    with operator_process(kubeconfig, log_path, ["--all-namespaces", *mode], env) as process:
        yield process


def model_deployment(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("model", {"name": "meta-llama/Llama-3.1-8B-Instruct"})
    spec.setdefault("maxModelLen", 4096)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip


class Cluster:
    """Typed shortcuts over the real API, for readable tests."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.policy = client.PolicyV1Api(api)

    def create_md(self, body: dict[str, Any]) -> dict[str, Any]:
        namespace = body["metadata"]["namespace"]
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", body)  # fmt: skip
        return created

    def md(self, namespace: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", name)  # fmt: skip
        return found

    def patch_md(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        patched: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", name, patch)  # fmt: skip
        return patched

    def delete_md(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", name)

    def condition(self, namespace: str, name: str, kind: str) -> dict[str, Any]:
        for condition in (self.md(namespace, name).get("status") or {}).get("conditions") or []:
            if condition["type"] == kind:
                return dict(condition)
        return {}

    def wait_condition(self, namespace: str, name: str, kind: str, status: str, timeout: float = 60,
                       reason: str | None = None, describe: Callable[[], object] | None = None,
                       ) -> dict[str, Any]:  # fmt: skip
        """Wait for a condition of the current generation; a timeout shows the status and what `describe` adds."""

        def check() -> dict[str, Any] | None:
            md = self.md(namespace, name)
            for condition in (md.get("status") or {}).get("conditions") or []:
                if (
                    condition["type"] == kind
                    and condition["status"] == status
                    and condition.get("observedGeneration") == md["metadata"]["generation"]
                    and (reason is None or condition["reason"] == reason)
                ):
                    return md
            return None

        def state() -> object:
            md = self.md(namespace, name)
            seen = {"generation": md["metadata"]["generation"], **(md.get("status") or {})}
            return seen if describe is None else {**seen, "waitingOn": describe()}

        return wait_for(check, timeout, f"{namespace}/{name} {kind}={status} {reason or ''}", state)

    def deployment(self, namespace: str, name: str) -> Any:
        return self.apps.read_namespaced_deployment(name, namespace)

    def exists(self, read: Callable[[], Any]) -> bool:
        try:
            read()
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True


class PrometheusStandIn:
    """A stand-in for Prometheus's HTTP query API (`GET /api/v1/query`, the one call KEDA's prometheus scaler
    makes), answering every query with the vector value the test sets: the load signal the test controls. No
    Prometheus server is built here; the query each ScaledObject asks is recorded and checked instead."""

    def __init__(self) -> None:
        self.value = 0.0
        self.queries: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path != "/api/v1/query":
                    self.send_error(404)
                    return
                stand_in.queries += urllib.parse.parse_qs(url.query).get("query", [])
                vector = [{"metric": {}, "value": [time.time(), str(stand_in.value)]}]
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": vector}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OperatorProcess:
    """The running operator, restartable in place (same credentials, same log)."""

    def __init__(self, kubeconfig: Path, log_path: Path, prometheus_address: str | None = None) -> None:
        self.kubeconfig, self.log_path = kubeconfig, log_path
        self.prometheus_address = prometheus_address
        self.metrics_port = free_port()
        self._context: Any = None
        self.process: subprocess.Popen[bytes]

    def start(self) -> None:
        # As the chart runs it: model catalog ConfigMaps are read in the operator's own namespace.
        env = {"MODELPLANE_METRICS_PORT": str(self.metrics_port), "MODELPLANE_CATALOG_NAMESPACE": OPERATOR_NAMESPACE}
        if self.prometheus_address is not None:
            env["MODELPLANE_PROMETHEUS_ADDRESS"] = self.prometheus_address
        self._context = running_operator(self.kubeconfig, self.log_path, env=env)
        self.process = self._context.__enter__()

    def stop(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown, as when a node dies under the operator."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._context = None

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def reserved_gpus(self, pool: str) -> int:
        """GPUs the operator holds on `pool`, from its `modelplane_reserved_gpus` gauge."""
        found = re.search(rf'^modelplane_reserved_gpus{{pool="{re.escape(pool)}"}} (\S+)$', self.metrics(), re.M)
        return int(float(found.group(1))) if found else 0

    def metrics(self) -> str:
        """The text of the operator's Prometheus `/metrics` endpoint."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text


AUDIT_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def now(seconds_ago: float = 0) -> str:
    """An RFC 3339 timestamp as the audit log writes them, for `audit_writes(since=...)`."""
    return datetime.fromtimestamp(time.time() - seconds_ago, UTC).strftime(AUDIT_TIME)


def operator_quiet(audit_log: Path, seconds: float) -> bool:
    """No mutating request by the operator in the last `seconds`."""
    return not audit_writes(audit_log, OPERATOR_USER, now(seconds))


def audit_writes(audit_log: Path, username: str, since: str) -> list[dict[str, Any]]:
    """Mutating requests `username` completed after the RFC 3339 timestamp `since`, from the audit log."""
    writes = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        if (event.get("stage") == "ResponseComplete" and event["user"]["username"] == username
                and event["verb"] in MUTATING and event["stageTimestamp"] > since):  # fmt: skip
            writes.append(event)
    return writes


MUTATING = {"create", "update", "patch", "delete", "deletecollection"}
