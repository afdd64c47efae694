#!/usr/bin/env bash
# Builds dd-apiserver (kube-apiserver + embedded etcd) and kubectl from the
# pinned go.mod into OUTDIR. Run update-deps.sh to move to another release.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
cd "$(dirname "$0")"
K8S=$(cat K8S_VERSION)
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
minor=$(echo "${K8S#v1.}" | cut -d. -f1)
ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
mkdir -p "$out"
go build -trimpath -ldflags "$ld" -o "$out/dd-apiserver.tmp" ./cmd/dd-apiserver
go build -trimpath -ldflags "$ld" -o "$out/kubectl.tmp" ./cmd/kubectl
mv "$out/dd-apiserver.tmp" "$out/dd-apiserver"
mv "$out/kubectl.tmp" "$out/kubectl"
echo "built kube-apiserver and kubectl $K8S into $out"
