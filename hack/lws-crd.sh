#!/usr/bin/env bash
# Print the path of the LeaderWorkerSet CRD shipped in the pinned sigs.k8s.io/lws Go module.
set -euo pipefail
# The version is pinned with every other component in one place.
# shellcheck source=cluster/versions.env
source "$(dirname "$0")/cluster/versions.env"
exec "$(dirname "$0")/module-file.sh" sigs.k8s.io/lws "$LWS_VERSION" \
  config/crd/bases/leaderworkerset.x-k8s.io_leaderworkersets.yaml
