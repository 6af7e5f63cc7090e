#!/usr/bin/env bash
# Print the path of KEDA's ScaledObject CRD shipped in the pinned github.com/kedacore/keda/v2 Go module.
set -euo pipefail
# shellcheck source=cluster/versions.env
source "$(dirname "$0")/cluster/versions.env"
exec "$(dirname "$0")/module-file.sh" github.com/kedacore/keda/v2 "$KEDA_VERSION" config/crd/bases/keda.sh_scaledobjects.yaml
