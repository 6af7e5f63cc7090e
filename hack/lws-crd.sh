#!/usr/bin/env bash
# Print the path of the LeaderWorkerSet CRD shipped in the pinned sigs.k8s.io/lws Go module.
# The module comes through the Go module proxy like every other component we build; nothing is committed.
set -euo pipefail
LWS_VERSION=${LWS_VERSION:-v0.8.0}
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
dir=$(go mod download -json "sigs.k8s.io/lws@${LWS_VERSION}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
echo "$dir/config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml"
