#!/usr/bin/env bash
# A real local Kubernetes control plane with simulated GPU nodes, as plain processes on 127.0.0.1.
#   cluster.sh build    build (or reuse) the pinned binaries           (see build.sh)
#   cluster.sh up       PKI, etcd, kube-apiserver, controller-manager, scheduler, kwok, the LeaderWorkerSet
#                       controller, KEDA's operator, GPU nodes
#   cluster.sh down     stop exactly the processes `up` started (see ours), remove the state directory
#   cluster.sh status   exit 0 when every component runs and /readyz is ok
#   cluster.sh env      print `export KUBECONFIG=...`
#   cluster.sh restart-control-plane   stop and start kube-apiserver and etcd (fault-injection tests)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE=${MODELPLANE_CACHE:-$HOME/.cache/modelplane}
DIR=${MODELPLANE_CLUSTER_DIR:-/tmp/modelplane-cluster}
POOLS=${MODELPLANE_POOLS:-$REPO/examples/pools/hybrid.yaml}
PYTHON=${PYTHON:-$([[ -x $REPO/.venv/bin/python ]] && echo "$REPO/.venv/bin/python" || echo python3)}
APISERVER_PORT=${MODELPLANE_APISERVER_PORT:-16443}
ETCD_CLIENT_PORT=${MODELPLANE_ETCD_PORT:-12379}
ETCD_PEER_PORT=$((ETCD_CLIENT_PORT + 1))
KCM_PORT=${MODELPLANE_KCM_PORT:-20257}
SCHEDULER_PORT=${MODELPLANE_SCHEDULER_PORT:-20259}
KWOK_PORT=${MODELPLANE_KWOK_PORT:-20247}
# The LeaderWorkerSet controller's webhook server, and its health probes on the next port.
LWS_PORT=${MODELPLANE_LWS_PORT:-20249}
LWS_PROBE_PORT=$((LWS_PORT + 1))
# KEDA's operator: its gRPC metrics service (for a metrics adapter; none runs here), probes on the next port.
KEDA_PORT=${MODELPLANE_KEDA_PORT:-20251}
KEDA_PROBE_PORT=$((KEDA_PORT + 1))
K8S_BIN=$CACHE/bin/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$CACHE/bin/etcd-$ETCD_VERSION
KWOK_BIN=$CACHE/bin/kwok-$KWOK_VERSION
LWS_BIN=$CACHE/bin/lws-$LWS_VERSION
KEDA_BIN=$CACHE/bin/keda-$KEDA_VERSION
KUBECONFIG_FILE=$DIR/kubeconfig
[[ $DIR == /* && $DIR != / ]] || { echo "MODELPLANE_CLUSTER_DIR must be an absolute path other than /" >&2; exit 2; }
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok lws-controller keda-operator)

log() { echo "[cluster] $*" >&2; }

# A pid file only counts while its process is one this cluster started, so a stale pid file whose number was
# reused is never trusted or killed. A component must run one of our cached binaries ($CACHE/bin/*/NAME,
# whatever version; a version bump while up must still let `down` stop the old one) with arguments naming
# the state directory. Anything else started against the cluster (the demo's operator) must have its stdout
# on $DIR/logs/NAME.log, which only a process launched by us has. The environment is not evidence: a user's
# shell with KUBECONFIG=$DIR/kubeconfig would match it.
ours() {  # ours NAME PID
  local name=$1 pid=$2 args=()
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  ((${#args[@]} > 0)) || return 1
  if [[ " ${COMPONENTS[*]} " == *" $name "* ]]; then
    [[ ${args[0]} == "$CACHE"/bin/*/"$name" ]] || return 1
    local arg
    for arg in "${args[@]:1}"; do [[ $arg == *"$DIR/"* ]] && return 0; done
    return 1
  fi
  [[ /proc/$pid/fd/1 -ef $DIR/logs/$name.log ]]
}

alive() {  # the process exists and is not a zombie waiting to be reaped
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

running() {
  local pidfile=$DIR/pids/$1.pid
  [[ -f $pidfile ]] && ours "$1" "$(cat "$pidfile")"
}

# stop NAME [SECONDS]: stop the process of NAME's pid file if it is ours: SIGTERM, then SIGKILL after SECONDS
# (default 10) if it is still ours; every wait is bounded. Fails with a message when it will not go away.
stop() {
  local name=$1 grace=${2:-10} pidfile=$DIR/pids/$1.pid
  [[ -f $pidfile ]] || return 0
  local pid; pid=$(cat "$pidfile")
  if ours "$name" "$pid"; then
    kill "$pid" 2>/dev/null || true
    # Re-checked before SIGKILL: the pid may have exited and been reused while we waited.
    if ! wait_gone "$pid" "$grace" && ours "$name" "$pid"; then
      log "$name (pid $pid) ignored SIGTERM for ${grace} s; sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      if ! wait_gone "$pid" 10; then
        log "$name (pid $pid) still runs 10 s after SIGKILL; pid file kept in $DIR/pids"
        return 1
      fi
    fi
  elif [[ $pid =~ ^[0-9]+$ ]] && alive "$pid"; then
    log "pid $pid of $pidfile is not a process this cluster started; left alone"
  fi
  rm -f "$pidfile"
}

wait_gone() {  # wait_gone PID SECONDS
  local deadline=$((SECONDS + $2))
  while alive "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

listening() {  # something accepts connections on 127.0.0.1:PORT
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_ports() {
  local busy=()
  for port in "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT" \
    "$LWS_PORT" "$LWS_PROBE_PORT" "$KEDA_PORT" "$KEDA_PROBE_PORT"; do
    listening "$port" && busy+=("$port")
  done
  ((${#busy[@]} == 0)) && return
  log "ports already in use on 127.0.0.1: ${busy[*]} (another cluster?); set MODELPLANE_APISERVER_PORT," \
    "MODELPLANE_ETCD_PORT, MODELPLANE_KCM_PORT, MODELPLANE_SCHEDULER_PORT, MODELPLANE_KWOK_PORT," \
    "MODELPLANE_LWS_PORT, MODELPLANE_KEDA_PORT (each and the port after it)"
  return 1
}

wait_until() {  # wait_until SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  while ((SECONDS < deadline)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "timed out waiting for $what; logs in $DIR/logs"
  tail -n 30 "$DIR"/logs/*.log >&2 || true
  return 1
}

readyz() {
  curl -fsS --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null
}

healthy() {
  for component in "${COMPONENTS[@]}"; do running "$component" || return 1; done
  readyz
}

start() {  # start NAME COMMAND...
  local name=$1; shift
  nohup "$@" >>"$DIR/logs/$name.log" 2>&1 &
  echo $! >"$DIR/pids/$name.pid"
}

pki() {
  local pki=$DIR/pki
  mkdir -p "$pki"
  [[ -f $pki/admin.crt ]] && return
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=modelplane-local-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile server.ext \
      -out server.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=modelplane-admin/O=system:masters" -keyout admin.key \
      -out admin.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile client.ext \
      -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    # The LeaderWorkerSet webhook server's certificate, where controller-runtime looks for it (tls.crt and
    # tls.key in its certDir); the API server calls it at https://127.0.0.1, trusting the same CA.
    mkdir -p lws
    openssl req -newkey rsa:2048 -nodes -subj "/CN=lws-webhook" -keyout lws/tls.key -out lws.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >lws.ext
    openssl x509 -req -in lws.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile lws.ext \
      -out lws/tls.crt 2>/dev/null
  )
}

kubeconfig() {
  local k=(kubectl config --kubeconfig="$KUBECONFIG_FILE")
  "${k[@]}" set-cluster local --server="https://127.0.0.1:$APISERVER_PORT" \
    --certificate-authority="$DIR/pki/ca.crt" --embed-certs >/dev/null
  "${k[@]}" set-credentials admin --client-certificate="$DIR/pki/admin.crt" \
    --client-key="$DIR/pki/admin.key" --embed-certs >/dev/null
  "${k[@]}" set-context local --cluster=local --user=admin >/dev/null
  "${k[@]}" use-context local >/dev/null
}

nodes() {
  "$PYTHON" "$HERE/nodes.py" "$POOLS" --kubeconfig "$KUBECONFIG_FILE" >&2
  wait_until 90 "GPU nodes Ready" all_nodes_ready
}

all_nodes_ready() {
  local statuses
  statuses=$(kubectl --kubeconfig="$KUBECONFIG_FILE" get nodes \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')
  [[ -n $statuses ]] && ! grep -qv '^True$' <<<"$statuses"
}

start_etcd() {
  start etcd "$ETCD_BIN/etcd" --name=node0 --data-dir="$DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="node0=http://127.0.0.1:$ETCD_PEER_PORT" \
    --auto-compaction-retention=1 --quota-backend-bytes=8589934592 --unsafe-no-fsync=true
}

start_apiserver() {
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --advertise-address=127.0.0.1 \
    --tls-cert-file="$DIR/pki/server.crt" --tls-private-key-file="$DIR/pki/server.key" \
    --client-ca-file="$DIR/pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$DIR/pki/sa.pub" --service-account-signing-key-file="$DIR/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none \
    --authorization-mode=Node,RBAC \
    --allow-privileged=true \
    --max-requests-inflight=1000 --max-mutating-requests-inflight=500 \
    --audit-policy-file="$HERE/audit-policy.yaml" --audit-log-path="$DIR/logs/audit.log" \
    --audit-log-format=json --audit-log-maxsize=500
}

# The LeaderWorkerSet controller (sigs.k8s.io/lws cmd/main.go) as a process: its CRD first (its manager does
# not start without it), its internal cert manager off (the cluster's CA signed its certificate), webhooks on
# loopback, metrics off, leader election on (a Lease in lws-system, the namespace it defaults to outside a pod).
# Only then its webhook configurations: with failurePolicy Fail, they must not point at a server not yet up.
start_lws() {
  local k=(kubectl --kubeconfig="$KUBECONFIG_FILE")
  "${k[@]}" apply --server-side --force-conflicts -f "$LWS_BIN/config/crd/bases" >/dev/null
  wait_until 60 "the LeaderWorkerSet CRD" lws_crd_established
  "${k[@]}" create namespace lws-system --dry-run=client -o yaml | "${k[@]}" apply --server-side -f - >/dev/null
  mkdir -p "$DIR/lws"
  cat >"$DIR/lws/config.yaml" <<EOF
apiVersion: config.lws.x-k8s.io/v1alpha1
kind: Configuration
internalCertManagement:
  enable: false
webhook:
  host: 127.0.0.1
  port: $LWS_PORT
  certDir: $DIR/pki/lws
metrics:
  bindAddress: "0"
health:
  healthProbeBindAddress: 127.0.0.1:$LWS_PROBE_PORT
leaderElection:
  leaderElect: true
  # Longer than the defaults (15 s, 10 s), so that restart-control-plane's API server outage does not make it
  # lose the lease, which ends the process.
  leaseDuration: 60s
  renewDeadline: 45s
  retryPeriod: 5s
EOF
  start lws-controller "$LWS_BIN/lws-controller" --kubeconfig="$KUBECONFIG_FILE" --config="$DIR/lws/config.yaml" \
    --zap-log-level=info
  wait_until 60 "the LeaderWorkerSet webhooks" lws_webhooks_served
  "$PYTHON" "$HERE/lws_webhooks.py" "$LWS_BIN" --port="$LWS_PORT" --ca="$DIR/pki/ca.crt" \
    | "${k[@]}" apply --server-side --force-conflicts -f - >/dev/null
}

# KEDA's operator (github.com/kedacore/keda/v2 cmd/operator) as a process: its CRDs first, its cert rotation
# off (its gRPC metrics service gets the loopback certificate the cluster's CA signed for the LWS webhooks),
# metrics off, no leader election (one replica), every namespace watched. It scales a ScaledObject's target
# between 0 and minReplicaCount itself from its triggers; above that it writes the HPA, whose external metrics
# need KEDA's metrics adapter, which is not run here.
start_keda() {
  local k=(kubectl --kubeconfig="$KUBECONFIG_FILE")
  "${k[@]}" apply --server-side --force-conflicts -f "$KEDA_BIN/config/crd/bases" >/dev/null
  wait_until 60 "KEDA's CRDs" keda_crd_established
  "${k[@]}" create namespace keda --dry-run=client -o yaml | "${k[@]}" apply --server-side -f - >/dev/null
  install -d "$DIR/pki/keda"
  cp "$DIR/pki/ca.crt" "$DIR/pki/lws/tls.crt" "$DIR/pki/lws/tls.key" "$DIR/pki/keda/"
  KUBECONFIG=$KUBECONFIG_FILE WATCH_NAMESPACE="" POD_NAMESPACE=keda KEDA_CLUSTER_OBJECT_NAMESPACE=keda \
    start keda-operator "$KEDA_BIN/keda-operator" --kubeconfig="$KUBECONFIG_FILE" --leader-elect=false \
    --enable-cert-rotation=false --cert-dir="$DIR/pki/keda" --ca-dir="$DIR/pki/keda" \
    --metrics-bind-address=0 --metrics-service-bind-address="127.0.0.1:$KEDA_PORT" \
    --health-probe-bind-address="127.0.0.1:$KEDA_PROBE_PORT" --zap-log-level=info
  wait_until 60 "KEDA's operator" curl -fsS "http://127.0.0.1:$KEDA_PROBE_PORT/readyz"
}

keda_crd_established() {
  kubectl --kubeconfig="$KUBECONFIG_FILE" get crd scaledobjects.keda.sh \
    -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' | grep -qx True
}

# Polled: `kubectl wait --for=condition=Established` fails outright on a CRD created a moment ago, whose
# status.conditions is still null.
lws_crd_established() {
  kubectl --kubeconfig="$KUBECONFIG_FILE" get crd leaderworkersets.leaderworkerset.x-k8s.io \
    -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' | grep -qx True
}

lws_webhooks_served() {
  # Its webhook paths are registered once its manager runs: ask its pod validator about a pod outside any
  # LeaderWorkerSet, which it allows.
  local review='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"probe",
    "kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
    "operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"probe"}}}}'
  curl -fsS --cacert "$DIR/pki/ca.crt" -H 'Content-Type: application/json' -d "$review" \
    "https://127.0.0.1:$LWS_PORT/validate--v1-pod" | grep -q '"allowed":true'
}

restart_control_plane() {
  # Fault injection for tests: kube-apiserver and etcd go away and come back; everything else keeps running.
  for component in kube-apiserver etcd; do
    running "$component" || { log "$component is not running from $DIR; run up first"; return 1; }
    # etcd and the API server get longer to shut down cleanly: the test wants a restart, not a crash.
    stop "$component" 30
  done
  start_etcd
  wait_until 30 etcd curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
  start_apiserver
  wait_until 90 kube-apiserver readyz
  # Should the outage still have cost the LeaderWorkerSet controller its lease, it exited: start it again.
  running lws-controller || start_lws
}

up() {
  if healthy; then
    nodes
    log "already up: export KUBECONFIG=$KUBECONFIG_FILE"
    return
  fi
  [[ -d $DIR ]] && down
  check_ports
  "$HERE/build.sh" >/dev/null
  mkdir -p "$DIR/logs" "$DIR/pids" "$DIR/kwok"
  install -d -m 700 "$DIR/etcd"
  # A failed start stops what it started but keeps $DIR/logs for whoever investigates; the next up clears it.
  trap 'log "up failed; logs kept in $DIR/logs"; stop_processes' EXIT
  pki
  kubeconfig

  start_etcd
  wait_until 30 etcd curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health"

  start_apiserver
  wait_until 90 kube-apiserver readyz

  start kube-controller-manager "$K8S_BIN/kube-controller-manager" --kubeconfig="$KUBECONFIG_FILE" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
    --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics \
    --root-ca-file="$DIR/pki/ca.crt" --service-account-private-key-file="$DIR/pki/sa.key" \
    --use-service-account-credentials=true \
    --node-monitor-period=5s --node-monitor-grace-period=40s --leader-elect=false \
    --concurrent-gc-syncs=10 --kube-api-qps=200 --kube-api-burst=400
  start kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$KUBECONFIG_FILE" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" \
    --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics --leader-elect=false \
    --kube-api-qps=200 --kube-api-burst=400
  KWOK_WORKDIR=$DIR/kwok start kwok "$KWOK_BIN/kwok" --kubeconfig="$KUBECONFIG_FILE" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-lease-duration-seconds=40 --cidr=10.244.0.1/16 --node-ip=10.0.0.1 \
    --server-address="127.0.0.1:$KWOK_PORT"
  wait_until 60 "the default service account" kubectl --kubeconfig="$KUBECONFIG_FILE" get serviceaccount default
  start_lws
  start_keda

  nodes
  trap - EXIT
  log "up: export KUBECONFIG=$KUBECONFIG_FILE (logs in $DIR/logs)"
}

stop_processes() {
  local reversed=() failed=0
  # Anything else started against this cluster (the demo's operator) first, then the components in reverse.
  for pidfile in "$DIR"/pids/*.pid; do
    local name; name=$(basename "$pidfile" .pid)
    [[ -f $pidfile && " ${COMPONENTS[*]} " != *" $name "* ]] && reversed+=("$name")
  done
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do reversed+=("${COMPONENTS[i]}"); done
  for component in "${reversed[@]}"; do
    stop "$component" || failed=1
  done
  return "$failed"
}

down() {
  # Keep the state directory (pid files, logs) when a process would not stop, so it can still be found.
  stop_processes || { log "down: some processes did not stop; $DIR kept"; return 1; }
  rm -rf "$DIR"
  log "down"
}

case ${1:-} in
  build) "$HERE/build.sh" ;;
  up) up ;;
  down) down ;;
  status) healthy ;;
  restart-control-plane) restart_control_plane ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
  *) echo "usage: $0 build|up|down|status|env|restart-control-plane" >&2; exit 2 ;;
esac
