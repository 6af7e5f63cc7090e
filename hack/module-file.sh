#!/usr/bin/env bash
# module-file.sh MODULE VERSION PATH: print where PATH of the Go module MODULE@VERSION is in the module cache,
# fetching the module through the Go module proxy like every other component we build; nothing is committed.
set -euo pipefail
[[ $# == 3 ]] || { echo "usage: $0 MODULE VERSION PATH" >&2; exit 2; }
module=$1 version=$2 file=$3
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
json=$(go mod download -json "$module@$version") || { echo "go mod download $module@$version failed: $json" >&2; exit 1; }
dir=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])' <<<"$json")
[[ -f $dir/$file ]] || { echo "no $file in $module@$version ($dir)" >&2; exit 1; }
echo "$dir/$file"
