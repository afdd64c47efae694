#!/usr/bin/env bash
# Regenerates go.mod/go.sum for a Kubernetes release. k8s.io/kubernetes lists
# its staging modules at v0.0.0 with local replaces, which only apply inside
# its own repo; we generate the matching replace lines from its go.mod.
# Usage: ./update-deps.sh v1.34.3 v3.6.9
set -euo pipefail
K8S=${1:?kubernetes version, e.g. v1.34.3}
ETCD=${2:?etcd server version, e.g. v3.6.9}
STG=v0.${K8S#v1.}
cd "$(dirname "$0")"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
rm -f go.mod go.sum
go mod init dd-preview.local/localcluster
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
for m in $(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*|\1|p' "$gomod"); do
  go mod edit -replace="$m=$m@$STG"
done
go mod edit -require="k8s.io/kubernetes@$K8S" -require="go.etcd.io/etcd/server/v3@$ETCD"
godebug=$(sed -n 's/^godebug \(.*\)/\1/p' "$gomod")
[ -z "$godebug" ] || go mod edit -godebug="$godebug"
go mod tidy
echo "$K8S" > K8S_VERSION
