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
    if grep -qE 'ERROR|CRITICAL' "$OPERATOR_LOG"; then  # the cause, which a traceback's tail often scrolls away
      echo "--- first errors in $OPERATOR_LOG" >&2
      grep -m 5 -E 'ERROR|CRITICAL' "$OPERATOR_LOG" >&2
    fi
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

# Wait until the operator is done with every ModelDeployment, then print what it decided (hack/demo_settle.py).
wait_settled_and_show() {
  "$VENV/bin/python" -m hack.demo_settle "$SETTLE_TIMEOUT" "$OPERATOR_PID" "$OPERATOR_LOG" "$VENV"
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
