#!/usr/bin/env bash
# The local demo: a real control plane with simulated GPU pools, the operator, and examples/.
# Usage: hack/demo.sh [up|down]   (make demo / make demo-down)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
STATE=${MODELPLANE_CLUSTER_DIR:-/tmp/modelplane-cluster}
OPERATOR_PID=$STATE/pids/operator.pid
OPERATOR_LOG=$STATE/logs/operator.log

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

if [[ ${1:-up} == down ]]; then
  down
  exit 0
fi

hack/cluster/cluster.sh up
export KUBECONFIG=$STATE/kubeconfig
kubectl apply --server-side -f crds/ >/dev/null
kubectl apply --server-side -f "$(hack/lws-crd.sh)" >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl apply --server-side -f examples/pools/ >/dev/null
for namespace in $(grep -h '^  namespace:' examples/deployments/*.yaml | awk '{print $2}' | sort -u); do
  kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
done

if ! operator_running; then
  mkdir -p "$(dirname "$OPERATOR_PID")" "$(dirname "$OPERATOR_LOG")"
  MODELPLANE_METRICS_PORT=19090 nohup "$VENV/bin/python" -m modelplane.operator --all-namespaces --standalone \
    --liveness=http://127.0.0.1:18080/healthz >"$OPERATOR_LOG" 2>&1 &
  echo $! >"$OPERATOR_PID"
fi

kubectl apply --server-side -f examples/deployments/ >/dev/null
echo "waiting for every ModelDeployment to be planned (or refused) ..."
for _ in $(seq 1 120); do
  pending=$(kubectl get md -A -o json | "$VENV/bin/python" -c '
import json, sys
items = json.load(sys.stdin)["items"]
print(sum(1 for i in items if (i.get("status") or {}).get("observedGeneration") != i["metadata"]["generation"]))')
  [[ $pending == 0 ]] && break
  sleep 1
done
for md in $(kubectl get md -A -o jsonpath='{range .items[?(@.spec.mode!="PlanOnly")]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}'); do
  kubectl wait -n "${md%/*}" "md/${md#*/}" --for=condition=Ready --timeout=60s >/dev/null 2>&1 || true
done

echo
kubectl get md -A
echo
"$VENV/bin/modelplane" plan examples/deployments --pools examples/pools || true
cat <<EOF_HELP

The demo cluster is running. Explore it with:
  export KUBECONFIG=$STATE/kubeconfig
  kubectl get md,gpupool -A          # deployments and pools (printer columns: plan, GPUs, Ready)
  kubectl describe md -n research llama-405b-onprem   # why it does not fit and what would
  kubectl get deploy,svc,pods -A -l app.kubernetes.io/managed-by=modelplane
  $VENV/bin/modelplane render examples/deployments --pools examples/pools -o out/   # the same manifests, for GitOps
  curl -s http://127.0.0.1:19090/metrics | grep '^modelplane_'   # the operator's Prometheus metrics
Operator log: $OPERATOR_LOG
Stop everything with: make demo-down
EOF_HELP
