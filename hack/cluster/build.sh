#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, helm and the LeaderWorkerSet
# controller from source through the
# Go module proxy into a cache outside the repository, keyed by version. A warm cache builds nothing.
# Every step builds into a temporary directory and renames it into place, so an interrupted build leaves
# nothing that looks finished; the next build removes such leftovers.
set -euo pipefail
# Command substitutions otherwise run with errexit off, so a failing step inside one would go unnoticed.
shopt -s inherit_errexit
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE=${MODELPLANE_CACHE:-$HOME/.cache/modelplane}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

K8S_BIN=$CACHE/bin/kubernetes-$KUBERNETES_VERSION
ETCD_BIN=$CACHE/bin/etcd-$ETCD_VERSION
KWOK_BIN=$CACHE/bin/kwok-$KWOK_VERSION
HELM_BIN=$CACHE/bin/helm-$HELM_VERSION
LWS_BIN=$CACHE/bin/lws-$LWS_VERSION
KEDA_BIN=$CACHE/bin/keda-$KEDA_VERSION
# The health program's own source is part of its key: an edit to main.go builds a new binary.
HEALTH_SOURCE=$HERE/../health/main.go
HEALTH_KEY=argocd-$ARGOCD_VERSION-cli-utils-$CLI_UTILS_VERSION
HEALTH_BIN=$CACHE/bin/health-$HEALTH_KEY-$(sha256sum "$HEALTH_SOURCE" | cut -c1-12)
MINOR=${KUBERNETES_VERSION#v1.}; MINOR=${MINOR%%.*}

log() { echo "[build] $*" >&2; }
die() { log "error: $*"; exit 1; }

# Temporary directories are "<final name>.partial-XXXXXX" so that a stale one is recognisable (see below).
new_tmp() { mktemp -d "$1.partial-XXXXXX"; }

# The staging modules are published as v0.X.Y for Kubernetes v1.X.Y; the wrapper's name carries only the
# Kubernetes version, so any other pairing would be a cache entry under the wrong key.
[[ $STAGING_VERSION == "v0.${KUBERNETES_VERSION#v1.}" ]] \
  || die "versions.env: STAGING_VERSION=$STAGING_VERSION does not match KUBERNETES_VERSION=$KUBERNETES_VERSION" \
    "(expected v0.${KUBERNETES_VERSION#v1.})"

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

# wrapper_module: set WRAPPER to the module that builds the Kubernetes binaries and etcd, creating it if needed.
# Called directly, never in $(...), so that any failure stops the build here. The module's requirements fix
# the versions of everything built from it, so its name carries each pinned version it resolves: changing
# ETCD_VERSION alone makes a new wrapper instead of rebuilding the old etcd under the new version's name.
wrapper_module() {
  WRAPPER=$CACHE/src/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION
  [[ -f $WRAPPER/go.sum ]] && return
  log "wrapper module $WRAPPER"
  local tmp; tmp=$(new_tmp "$WRAPPER")
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging paths, which do
  # not apply to a dependency: pin each one to the published tag of the same patch release instead. The list
  # is read from that release's own go.mod, so it follows the release (it drifts between minors).
  local json gomod modules
  json=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION") \
    || die "go mod download k8s.io/kubernetes@$KUBERNETES_VERSION failed: $json"
  gomod=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])' <<<"$json") \
    || die "no GoMod in go mod download's answer for k8s.io/kubernetes@$KUBERNETES_VERSION"
  [[ -f $gomod ]] || die "k8s.io/kubernetes@$KUBERNETES_VERSION go.mod not found at $gomod"
  modules=$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod")
  [[ -n $modules ]] || die "no k8s.io/* v0.0.0 requirements in $gomod: the staging layout changed"
  (
    cd "$tmp"
    go mod init local.invalid/modelplane-k8sbins 2>/dev/null || die "go mod init failed in $tmp"
    go mod edit -go=1.24.0 || die "go mod edit -go failed in $tmp"
    local module
    for module in $modules; do
      go mod edit -replace="$module=$module@$STAGING_VERSION" || die "go mod edit -replace $module failed"
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
    go get "k8s.io/kubernetes@$KUBERNETES_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2 \
      || die "go get k8s.io/kubernetes@$KUBERNETES_VERSION go.etcd.io/etcd/server/v3@$ETCD_VERSION failed in $tmp"
    [[ -s go.sum ]] || die "go get left no go.sum in $tmp"
  )
  publish "$tmp" "$WRAPPER"
}

build_kubernetes() {
  [[ -x $K8S_BIN/kube-apiserver && -x $K8S_BIN/kube-controller-manager && -x $K8S_BIN/kube-scheduler ]] && return
  log "kubernetes $KUBERNETES_VERSION"
  wrapper_module
  local out; out=$(new_tmp "$K8S_BIN")
  local flags; flags=$(stamp_flags)
  (cd "$WRAPPER" && go build -trimpath -tags=selinux,notest -ldflags "$flags" -o "$out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler)
  publish "$out" "$K8S_BIN"
}

build_etcd() {
  [[ -x $ETCD_BIN/etcd ]] && return
  log "etcd $ETCD_VERSION"
  wrapper_module
  local out; out=$(new_tmp "$ETCD_BIN")
  (cd "$WRAPPER" && go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
    -o "$out/etcd" go.etcd.io/etcd/server/v3)
  publish "$out" "$ETCD_BIN"
}

build_kwok() {
  [[ -x $KWOK_BIN/kwok ]] && return
  log "kwok $KWOK_VERSION"
  local out; out=$(new_tmp "$KWOK_BIN")
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
  local out; out=$(new_tmp "$HELM_BIN")
  GOBIN=$out go install -trimpath -ldflags "$flags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  publish "$out" "$HELM_BIN"
}

# lws_module: set LWS_MODULE to a module that requires sigs.k8s.io/lws at the pinned version, creating it if
# needed. `go install sigs.k8s.io/lws/cmd@VERSION` does not work here: it reads the module's version list for
# deprecations, and the proxy answers 403 for that list.
lws_module() {
  LWS_MODULE=$CACHE/src/lws-$LWS_VERSION
  [[ -f $LWS_MODULE/go.mod ]] && return
  local tmp; tmp=$(new_tmp "$LWS_MODULE")
  (
    cd "$tmp"
    go mod init local.invalid/modelplane-lws 2>/dev/null || die "go mod init failed in $tmp"
    cat >tools.go <<'EOT'
//go:build tools

// Package tools pins the command this module builds.
package tools

import _ "sigs.k8s.io/lws/cmd"
EOT
    go get "sigs.k8s.io/lws@$LWS_VERSION" >&2 || die "go get sigs.k8s.io/lws@$LWS_VERSION failed in $tmp"
  )
  publish "$tmp" "$LWS_MODULE"
}

build_lws() {
  [[ -x $LWS_BIN/lws-controller && -d $LWS_BIN/config ]] && return
  log "lws $LWS_VERSION"
  lws_module
  local out; out=$(new_tmp "$LWS_BIN")
  # The controller's main package is sigs.k8s.io/lws/cmd (the image's /manager).
  (cd "$LWS_MODULE" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/lws/pkg/version.GitVersion=$LWS_VERSION" \
    -o "$out/lws-controller" sigs.k8s.io/lws/cmd)
  # The CRD and the webhook manifests of the same version go with it: `up` installs them from here.
  local json dir
  json=$(cd "$LWS_MODULE" && go mod download -json "sigs.k8s.io/lws@$LWS_VERSION") \
    || die "go mod download sigs.k8s.io/lws@$LWS_VERSION failed: $json"
  dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$json")
  mkdir -p "$out/config"
  cp -r --no-preserve=mode "$dir/config/crd" "$dir/config/webhook" "$out/config/"
  publish "$out" "$LWS_BIN"
}

# KEDA's operator (github.com/kedacore/keda/v2 cmd/operator, the image's /keda), built in a module of our own
# that requires KEDA at the pinned version, like the LWS controller, with KEDA's CRDs of the same version.
build_keda() {
  [[ -x $KEDA_BIN/keda-operator && -d $KEDA_BIN/config ]] && return
  log "keda $KEDA_VERSION (about 5 minutes and 3.4 GB the first time)"
  local module=$CACHE/src/keda-$KEDA_VERSION
  if [[ ! -f $module/go.mod ]]; then
    local tmp; tmp=$(new_tmp "$module")
    (
      cd "$tmp"
      go mod init local.invalid/modelplane-keda 2>/dev/null || die "go mod init failed in $tmp"
      printf '//go:build tools\n\n// Package tools pins the command this module builds.\npackage tools\n\nimport _ %s\n' \
        '"github.com/kedacore/keda/v2/cmd/operator"' >tools.go
      go get "github.com/kedacore/keda/v2@$KEDA_VERSION" >&2 || die "go get keda@$KEDA_VERSION failed in $tmp"
    )
    publish "$tmp" "$module"
  fi
  local out; out=$(new_tmp "$KEDA_BIN")
  (cd "$module" && go build -trimpath -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION" \
    -o "$out/keda-operator" github.com/kedacore/keda/v2/cmd/operator)
  local json dir
  json=$(cd "$module" && go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION") \
    || die "go mod download keda@$KEDA_VERSION failed: $json"
  dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$json")
  mkdir -p "$out/config"
  cp -r --no-preserve=mode "$dir/config/crd" "$out/config/"
  publish "$out" "$KEDA_BIN"
}

# health_module: set HEALTH_MODULE to a module requiring the pinned Argo CD and cli-utils, creating it if
# needed. Its go.sum is resolved once from the proxy; the program's source is copied in at build time.
health_module() {
  HEALTH_MODULE=$CACHE/src/health-$HEALTH_KEY
  [[ -f $HEALTH_MODULE/go.mod ]] && return
  local tmp; tmp=$(new_tmp "$HEALTH_MODULE")
  (
    cd "$tmp"
    go mod init local.invalid/modelplane-health 2>/dev/null || die "go mod init failed in $tmp"
    go get "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" "sigs.k8s.io/cli-utils@$CLI_UTILS_VERSION" >&2 \
      || die "go get argo-cd@$ARGOCD_VERSION cli-utils@$CLI_UTILS_VERSION failed in $tmp"
  )
  publish "$tmp" "$HEALTH_MODULE"
}

build_health() {
  [[ -x $HEALTH_BIN/modelplane-health ]] && return
  log "modelplane-health (Argo CD $ARGOCD_VERSION, cli-utils $CLI_UTILS_VERSION)"
  health_module
  local out; out=$(new_tmp "$HEALTH_BIN")
  local work; work=$(new_tmp "$CACHE/src/health-build")
  cp "$HEALTH_MODULE/go.mod" "$HEALTH_MODULE/go.sum" "$HEALTH_SOURCE" "$work/"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$out/modelplane-health" .)
  rm -rf "$work"
  publish "$out" "$HEALTH_BIN"
}

# clean_stale_tmp: remove what interrupted builds left. Only under the build lock, so no build is using them,
# and only names our mktemp templates produce: "<name>.partial-XXXXXX", and the earlier "<name>-vX.Y.Z.XXXX".
clean_stale_tmp() {
  local dir
  for dir in "$CACHE"/bin/* "$CACHE"/src/*; do
    [[ -d $dir && ! -L $dir ]] || continue
    if [[ ${dir##*/} =~ \.partial-[A-Za-z0-9]{6}$ || ${dir##*/} =~ ^[a-z0-9-]+-v[0-9]+\.[0-9]+\.[0-9]+\.[A-Za-z0-9]{4}$ ]]; then
      log "removing $dir (left by an interrupted build)"
      rm -rf "$dir"
    fi
  done
}

report_failure() {
  local rc=$?
  ((rc == 0)) || log "build failed (exit $rc); nothing unfinished was published under $CACHE"
}
trap report_failure EXIT
mkdir -p "$CACHE/bin" "$CACHE/src"
# One build at a time: a second caller (a test needing helm while `up` builds) waits, then finds it built.
exec 9>"$CACHE/.build.lock"
flock 9
clean_stale_tmp
build_kubernetes
build_etcd
build_kwok
build_helm
build_lws
build_keda
build_health
echo "K8S_BIN=$K8S_BIN"
echo "ETCD_BIN=$ETCD_BIN"
echo "KWOK_BIN=$KWOK_BIN"
echo "HELM_BIN=$HELM_BIN"
echo "LWS_BIN=$LWS_BIN"
echo "KEDA_BIN=$KEDA_BIN"
echo "HEALTH_BIN=$HEALTH_BIN"
