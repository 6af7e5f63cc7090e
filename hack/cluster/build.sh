#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and helm from source through the
# Go module proxy into a cache outside the repository, keyed by version. A warm cache builds nothing.
# Every step builds into a temporary directory and renames it into place, so an interrupted build leaves
# nothing that looks finished.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE=${MODELPLANE_CACHE:-$HOME/.cache/modelplane}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

K8S_BIN=$CACHE/bin/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$CACHE/bin/etcd-$ETCD_VERSION
KWOK_BIN=$CACHE/bin/kwok-$KWOK_VERSION
HELM_BIN=$CACHE/bin/helm-$HELM_VERSION
MINOR=${KUBERNETES_VERSION#v1.}; MINOR=${MINOR%%.*}

log() { echo "[build] $*" >&2; }

stamp_flags() {
  # Unstamped binaries report v0.0.0 and tools that parse --version (kwokctl, kubectl skew checks) misbehave.
  local date; date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  local flags="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$MINOR"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=0000000000000000000000000000000000000000"
    flags+=" -X $pkg.buildDate=$date"
  done
  echo "$flags"
}

# publish TMPDIR DIR: make a finished build visible in one rename.
publish() { chmod 755 "$1"; rm -rf "$2"; mv "$1" "$2"; }

wrapper_module() {
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging paths, which do
  # not apply to a dependency: pin each one to the published tag of the same patch release instead. The list
  # is read from that release's own go.mod, so it follows the release (it drifts between minors).
  local src=$CACHE/src/kubernetes-$KUBERNETES_VERSION
  [[ -f $src/go.sum ]] && { echo "$src"; return; }
  local tmp; tmp=$(mktemp -d "$src.XXXX")
  (
    cd "$tmp"
    go mod init local.invalid/modelplane-k8sbins 2>/dev/null
    go mod edit -go=1.24.0
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    for module in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod"); do
      go mod edit -replace="$module=$module@$STAGING_VERSION"
    done
    cat >tools.go <<'EOT'
//go:build tools

// Package tools pins the commands this module builds.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
EOT
    go get "k8s.io/kubernetes@$KUBERNETES_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  )
  publish "$tmp" "$src"
  echo "$src"
}

build_kubernetes() {
  [[ -x $K8S_BIN/kube-apiserver && -x $K8S_BIN/kube-controller-manager && -x $K8S_BIN/kube-scheduler ]] && return
  log "kubernetes $KUBERNETES_VERSION"
  local src; src=$(wrapper_module)
  local out; out=$(mktemp -d "$K8S_BIN.XXXX")
  (cd "$src" && go build -trimpath -tags=selinux,notest -ldflags "$(stamp_flags)" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler)
  publish "$out" "$K8S_BIN"
}

build_etcd() {
  [[ -x $ETCD_BIN/etcd ]] && return
  log "etcd $ETCD_VERSION"
  local src; src=$(wrapper_module)
  local out; out=$(mktemp -d "$ETCD_BIN.XXXX")
  (cd "$src" && go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
    -o "$out/etcd" go.etcd.io/etcd/server/v3)
  publish "$out" "$ETCD_BIN"
}

build_kwok() {
  [[ -x $KWOK_BIN/kwok ]] && return
  log "kwok $KWOK_VERSION"
  local out; out=$(mktemp -d "$KWOK_BIN.XXXX")
  GOBIN=$out go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  publish "$out" "$KWOK_BIN"
}

build_helm() {
  [[ -x $HELM_BIN/helm ]] && return
  log "helm $HELM_VERSION"
  # Without these, helm's built-in capabilities claim Kubernetes 1.20 and kubeVersion constraints fail.
  local flags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$MINOR"
  done
  local out; out=$(mktemp -d "$HELM_BIN.XXXX")
  GOBIN=$out go install -trimpath -ldflags "$flags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  publish "$out" "$HELM_BIN"
}

mkdir -p "$CACHE/bin" "$CACHE/src"
# One build at a time: a second caller (a test needing helm while `up` builds) waits, then finds it built.
exec 9>"$CACHE/.build.lock"
flock 9
build_kubernetes
build_etcd
build_kwok
build_helm
echo "K8S_BIN=$K8S_BIN"
echo "ETCD_BIN=$ETCD_BIN"
echo "KWOK_BIN=$KWOK_BIN"
echo "HELM_BIN=$HELM_BIN"
