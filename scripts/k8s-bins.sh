#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, controller-manager, scheduler, kubectl, kwok, helm)
# from upstream Go modules into a versioned cache outside the repo; idempotent; prints the bin dir.
set -euo pipefail
K8S=${K8S_VERSION:-v1.34.4}
STAGING="v0.${K8S#v1.}"
ETCD=${ETCD_VERSION:-v3.6.14}
KWOK=${KWOK_VERSION:-v0.8.0}
HELM=${HELM_VERSION:-v3.22.0}
CACHE=${LLMOP_BIN_CACHE:-$HOME/.cache/llmop/bin}
OUT="$CACHE/k8s-$K8S-etcd-$ETCD-kwok-$KWOK-helm-$HELM"
if [ -f "$OUT/.complete" ]; then ln -sfn "$OUT" "$CACHE/current"; echo "$OUT"; exit 0; fi
export GOTOOLCHAIN=local CGO_ENABLED=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
START=$(date +%s)
log() { echo "[k8s-bins] $*" >&2; }

build_kubernetes() {
  mkdir "$WORK/k8s" && cd "$WORK/k8s"
  go mod init local.test/llmop-k8s-bins >/dev/null 2>&1
  go mod edit -go=1.24.0 -godebug=default=go1.24
  local upstream_mod
  upstream_mod=$(go mod download -json "k8s.io/kubernetes@$K8S" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  for module in $(go mod edit -json "$upstream_mod" | python3 -c 'import json,sys
print(" ".join(r["Path"] for r in json.load(sys.stdin)["Require"] if r["Version"]=="v0.0.0"))'); do
    go mod edit -replace="$module=$module@$STAGING"
  done
  local cmds="kube-apiserver kube-controller-manager kube-scheduler kubectl"
  go get -tool $(for c in $cmds; do echo "k8s.io/kubernetes/cmd/$c@$K8S"; done) >&2
  local minor ldflags date_now
  minor=$(echo "$K8S" | cut -d. -f2)
  date_now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date_now"
  done
  for c in $cmds; do
    log "building $c"
    go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$ldflags" -o "$OUT/$c" "k8s.io/kubernetes/cmd/$c"
  done
}

build_etcd() {
  mkdir "$WORK/etcd" && cd "$WORK/etcd"
  go mod init local.test/llmop-etcd-bin >/dev/null 2>&1
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD" >&2
  log "building etcd"
  go build -trimpath -ldflags="-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  log "building kwok"
  GOBIN="$OUT" go install -trimpath -ldflags="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK" "sigs.k8s.io/kwok/cmd/kwok@$KWOK"
  local stages
  stages="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK/kustomize/stage"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    cat "$stages/$f"; echo "---"
  done > "$OUT/kwok-stages.yaml"
}

build_helm() {
  log "building helm"
  local h=helm.sh/helm/v3 minor
  minor=$(echo "$K8S" | cut -d. -f2)
  GOBIN="$OUT" go install -trimpath -ldflags="-s -w -X $h/internal/version.version=$HELM \
    -X $h/pkg/chartutil.k8sVersionMajor=1 -X $h/pkg/chartutil.k8sVersionMinor=$minor \
    -X $h/pkg/lint/rules.k8sVersionMajor=1 -X $h/pkg/lint/rules.k8sVersionMinor=$minor" "$h/cmd/helm@$HELM"
}

[ -x "$OUT/etcd" ] || build_etcd
[ -x "$OUT/kwok" ] || build_kwok
[ -x "$OUT/helm" ] || build_helm
[ -x "$OUT/kubectl" ] || build_kubernetes
"$OUT/kube-apiserver" --version >&2
"$OUT/etcd" --version | sed -n 1p >&2  # sed reads it all: `head` could close the pipe early (SIGPIPE, exit 141)
"$OUT/helm" version --short >&2
echo "$(( $(date +%s) - START ))" > "$OUT/.build-seconds"
touch "$OUT/.complete"
ln -sfn "$OUT" "$CACHE/current"
log "built in $(cat "$OUT/.build-seconds") s"
echo "$OUT"
