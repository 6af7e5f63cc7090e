#!/usr/bin/env bash
# Print the path of the LeaderWorkerSet CRD shipped in the pinned sigs.k8s.io/lws Go module.
# The module comes through the Go module proxy like every other component we build; nothing is committed.
set -euo pipefail
# The version is pinned with every other component in one place.
# shellcheck source=cluster/versions.env
source "$(dirname "$0")/cluster/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
json=$(go mod download -json "sigs.k8s.io/lws@${LWS_VERSION}") \
  || { echo "go mod download sigs.k8s.io/lws@$LWS_VERSION failed: $json" >&2; exit 1; }
dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$json")
crd=$dir/config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml
[[ -f $crd ]] || { echo "no LeaderWorkerSet CRD at $crd" >&2; exit 1; }
echo "$crd"
