#!/usr/bin/env bash
# Print the path of KEDA's ScaledObject CRD shipped in the pinned github.com/kedacore/keda/v2 Go module.
# The module comes through the Go module proxy like every other component we build; nothing is committed.
set -euo pipefail
# shellcheck source=cluster/versions.env
source "$(dirname "$0")/cluster/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
json=$(go mod download -json "github.com/kedacore/keda/v2@${KEDA_VERSION}") \
  || { echo "go mod download github.com/kedacore/keda/v2@$KEDA_VERSION failed: $json" >&2; exit 1; }
dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$json")
crd=$dir/config/crd/bases/keda.sh_scaledobjects.yaml
[[ -f $crd ]] || { echo "no ScaledObject CRD at $crd" >&2; exit 1; }
echo "$crd"
