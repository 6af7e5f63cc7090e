#!/usr/bin/env bash
# The local demo: a real control plane with simulated GPU pools, the operator, and examples/.
# Usage: hack/demo.sh [up|down]   (make demo / make demo-down)
# Environment: MODELPLANE_CLUSTER_DIR and the MODELPLANE_*_PORT variables of hack/cluster/cluster.sh;
# MODELPLANE_DEMO_LIVENESS_PORT (18080) and MODELPLANE_DEMO_METRICS_PORT (19090) for the operator;
# MODELPLANE_DEMO_TIMEOUT (180) seconds for every example to settle.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STATE=${MODELPLANE_CLUSTER_DIR:-/tmp/modelplane-cluster}
LIVENESS_PORT=${MODELPLANE_DEMO_LIVENESS_PORT:-18080}
METRICS_PORT=${MODELPLANE_DEMO_METRICS_PORT:-19090}
SETTLE_TIMEOUT=${MODELPLANE_DEMO_TIMEOUT:-180}
OPERATOR_PID=$STATE/pids/operator.pid
OPERATOR_LOG=$STATE/logs/operator.log
# The ports a running operator was started with: a second `up` reports those, not the current environment's.
OPERATOR_PORTS=$STATE/operator.ports

# The pid file names our operator only while that process runs modelplane.operator with its stdout on our log
# file; a reused pid belongs to someone else and must not be signalled.
operator_running() {
  local pid; pid=$(cat "$OPERATOR_PID" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && /proc/$pid/fd/1 -ef $OPERATOR_LOG ]] \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- '-m modelplane.operator '
}

down() {
  if operator_running; then
    local pid; pid=$(cat "$OPERATOR_PID")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do operator_running || break; sleep 0.2; done
    if operator_running; then
      echo "operator (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$OPERATOR_PID"
  hack/cluster/cluster.sh down
}

fail() {  # fail MESSAGE: what went wrong, the operator's last words, and how to clean up
  echo "demo: $1" >&2
  if [[ -f $OPERATOR_LOG ]]; then
    echo "--- last 40 lines of $OPERATOR_LOG" >&2
    tail -n 40 "$OPERATOR_LOG" >&2
  fi
  echo "--- the cluster is still up for a look (KUBECONFIG=$STATE/kubeconfig); stop it with: $STOP" >&2
  exit 1
}

listening() {  # something accepts connections on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_operator() {
  local port
  for port in "$LIVENESS_PORT" "$METRICS_PORT"; do
    # Another process there would answer our /healthz probe in the operator's place.
    ! listening "$port" || fail "port $port is in use; set MODELPLANE_DEMO_LIVENESS_PORT and MODELPLANE_DEMO_METRICS_PORT"
  done
  mkdir -p "$(dirname "$OPERATOR_PID")" "$(dirname "$OPERATOR_LOG")"
  echo "$LIVENESS_PORT $METRICS_PORT" >"$OPERATOR_PORTS"
  MODELPLANE_METRICS_PORT=$METRICS_PORT nohup "$VENV/bin/python" -m modelplane.operator --all-namespaces \
    --standalone --liveness="http://127.0.0.1:$LIVENESS_PORT/healthz" >"$OPERATOR_LOG" 2>&1 &
  OPERATOR_CHILD=$!
  echo "$OPERATOR_CHILD" >"$OPERATOR_PID"
}

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds, or fail at the deadline
  local seconds=$1 what=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after $seconds s waiting for $what"
    sleep 0.25
  done
}

operator_healthy() {
  curl -fsS -o /dev/null "http://127.0.0.1:$LIVENESS_PORT/healthz" 2>/dev/null && return
  # One we just started is checked by pid: until it has exec'd Python, its command line is still this shell's.
  if [[ -n ${OPERATOR_CHILD:-} ]]; then kill -0 "$OPERATOR_CHILD" 2>/dev/null; else operator_running; fi \
    || fail "the operator exited before answering /healthz"
  return 1
}

# Polled rather than `kubectl wait --for=condition=Established`, which gives up instead of waiting on a CRD
# created a moment ago, whose status.conditions is still null (jsonpath fails on it too, hence no stderr).
crds_established() {
  local statuses
  statuses=$(kubectl get crd 2>/dev/null \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Established")].status}{"\n"}{end}') || return 1
  [[ -n $statuses ]] && ! grep -qv '^True$' <<<"$statuses"
}

# Wait until the operator is done with every ModelDeployment, as tests/e2e/test_lifecycle.py's _settled
# defines it: its Planned condition is of the latest generation, and it was refused (Planned=False) or is
# Ready (multi-node ones too: the cluster runs the LeaderWorkerSet controller). Watches, with one deadline
# for all. Then prints what the operator decided, from the same objects; or, on timeout, the ones
# that did not settle.
wait_settled_and_show() {
  "$VENV/bin/python" - "$SETTLE_TIMEOUT" "$OPERATOR_PID" "$OPERATOR_LOG" "$VENV" <<'EOF_PYTHON'
import os
import sys
import time

from kubernetes import client, config, watch

timeout, pid_file, log, venv = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
RESOURCE = ("modelplane.dev", "v1alpha1", "modeldeployments")


def key(md):
    return f"{md['metadata']['namespace']}/{md['metadata']['name']}"


def conditions(md):
    return {c["type"]: c for c in (md.get("status") or {}).get("conditions") or []}


def settled(md):
    planned, ready = conditions(md).get("Planned"), conditions(md).get("Ready")
    if planned is None or planned.get("observedGeneration") != md["metadata"]["generation"]:
        return False
    return planned["status"] == "False" or (ready or {}).get("status") == "True"


def operator_alive():
    pid = open(pid_file).read().strip()
    return os.path.exists(f"/proc/{pid}/fd/1") and os.path.samefile(f"/proc/{pid}/fd/1", log)


def row(md):
    plan, found = (md.get("status") or {}).get("plan") or {}, conditions(md)
    planned, ready = found["Planned"], found.get("Ready") or {"status": "-", "reason": "-"}
    note = ""
    if planned["status"] == "False":
        name, namespace = md["metadata"]["name"], md["metadata"]["namespace"]
        note = f"{planned['reason']}: {venv}/bin/modelplane explain md/{name} -n {namespace}"
    elif ready["reason"] == "PlanOnly":
        note = "planned only: nothing created"
    elif int(plan.get("nodesPerReplica") or 1) > 1:
        note = f"{plan['nodesPerReplica']} nodes per replica: a LeaderWorkerSet"
    shape = f"TP{plan['tensorParallel']}×PP{plan['pipelineParallel']}" if plan else "-"
    gpus = f"{plan['gpusPerReplica']}×{plan['replicas']}" if plan else "-"
    estimates = plan.get("estimates") or {}
    return [key(md), plan.get("pool", "-"), plan.get("gpu", "-"), plan.get("quantization", "-"), shape, gpus,
            str(estimates.get("decodeTokensPerSecond") or "-"), estimates.get("costPerHour") or "-",
            ready["status"], ready["reason"], note]


def show(items):
    rows = [["DEPLOYMENT", "POOL", "GPU", "QUANT", "SHAPE", "GPUS", "TOK/S", "$/H", "READY", "REASON", ""]]
    rows += [row(md) for _, md in sorted(items.items())]
    widths = [max(len(cells[i]) for cells in rows) for i in range(len(rows[0]))]
    print("\nWhat the operator decided (status.plan and the Ready condition of each ModelDeployment):")
    for cells in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip())


config.load_kube_config()
api = client.CustomObjectsApi()
deadline = time.monotonic() + timeout
while True:
    listed = api.list_cluster_custom_object(*RESOURCE)
    items = {key(md): md for md in listed["items"]}
    remaining = deadline - time.monotonic()
    if all(map(settled, items.values())) or remaining <= 0 or not operator_alive():
        break
    try:
        # Short watches, so an operator that died is noticed within seconds, not at the deadline.
        for event in watch.Watch().stream(api.list_cluster_custom_object, *RESOURCE,
                                          resource_version=listed["metadata"]["resourceVersion"],
                                          timeout_seconds=max(1, min(10, round(remaining)))):
            items[key(event["object"])] = event["object"]
            if all(map(settled, items.values())):
                break
    except client.ApiException as error:
        if error.status != 410:  # 410: our resourceVersion was compacted away; list again
            raise
pending = [name for name, md in sorted(items.items()) if not settled(md)]
if not pending:
    show(items)
    sys.exit(0)
for name in pending:
    now = "; ".join(f"{kind}={c['status']} ({c['reason']})" for kind, c in conditions(items[name]).items()
                    if kind in ("Planned", "Ready"))
    print(f"  {name}: {now or 'no status yet'}", file=sys.stderr)
print("the operator exited" if not operator_alive() else f"not settled after {timeout:g} s", file=sys.stderr)
sys.exit(1)
EOF_PYTHON
}

# The placeholder token llama-8b-l4.yaml refers to (spec.hfTokenSecretRef, default key `token`). The simulated
# nodes download nothing; to serve gated models on a real cluster, put your own token in this Secret:
#   kubectl -n chat create secret generic hf-token --from-literal=token=hf_... --dry-run=client -o yaml | kubectl apply -f -
# An existing Secret is left as it is, so a real token put there survives another `make demo`.
create_placeholder_token() {
  kubectl -n chat get secret hf-token >/dev/null 2>&1 && return
  kubectl create -f - >/dev/null <<'EOF_SECRET'
apiVersion: v1
kind: Secret
metadata: {name: hf-token, namespace: chat}
stringData: {token: not-a-real-token-put-yours-here}
EOF_SECRET
}

if [[ $STATE == /tmp/modelplane-cluster ]]; then STOP="make demo-down"; else STOP="MODELPLANE_CLUSTER_DIR=$STATE make demo-down"; fi

if [[ ${1:-up} == down ]]; then
  down
  exit 0
fi

hack/cluster/cluster.sh up
export KUBECONFIG=$STATE/kubeconfig
kubectl apply --server-side -f crds/ >/dev/null
wait_until 60 "the CRDs to be Established" crds_established
kubectl apply --server-side -f examples/pools/ >/dev/null
mapfile -t namespaces < <(awk '/^  namespace:/ {print $2}' examples/deployments/*.yaml | sort -u)
for namespace in "${namespaces[@]}"; do
  kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done
create_placeholder_token

if ! operator_running; then
  start_operator
elif [[ -f $OPERATOR_PORTS ]]; then
  read -r LIVENESS_PORT METRICS_PORT <"$OPERATOR_PORTS"
fi
wait_until 60 "the operator's /healthz on port $LIVENESS_PORT" operator_healthy

kubectl apply --server-side -f examples/deployments/ >/dev/null
echo "waiting up to $SETTLE_TIMEOUT s for every ModelDeployment to be served or refused ..."
wait_settled_and_show || fail "some ModelDeployments did not settle (above)"
cat <<EOF_HELP

The demo cluster is running. Explore it with:
  export KUBECONFIG=$STATE/kubeconfig
  kubectl get md,gpupool -A          # deployments and pools (printer columns: plan, GPUs, Ready)
  $VENV/bin/modelplane explain md/NAME -n NAMESPACE   # conditions, plan, memory per GPU, why not other pools
  kubectl get deploy,lws,svc,pods -A -l app.kubernetes.io/managed-by=modelplane
  $VENV/bin/modelplane render examples/deployments --pools examples/pools -o out/   # the same manifests, for GitOps
  curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep '^modelplane_'   # the operator's Prometheus metrics
Operator log: $OPERATOR_LOG
Stop everything with: $STOP
EOF_HELP
