# shellcheck shell=bash
# Builds (once per version) the binaries the stack runs, from the Go module
# proxy. Each result goes to a versioned directory that only appears, by rename,
# after a successful build, so an interrupted build never leaves a half cache.
# The wall-clock time of each build is kept beside it (build-seconds) so the
# README's cold-build figures can be re-measured.

k8s_bin_dir()      { echo "$TRIBUTARY_CACHE/k8s/$KUBERNETES_VERSION/bin"; }
minio_bin_dir()    { echo "$TRIBUTARY_CACHE/minio/$MINIO_VERSION"; }
ferretdb_bin_dir() { echo "$TRIBUTARY_CACHE/ferretdb/$FERRETDB_VERSION/bin"; }
etcd_bin_dir()     { echo "$TRIBUTARY_CACHE/etcd/$ETCD_VERSION/bin"; }

# _build_into FINAL_DIR NAME CMD... : run CMD with $OUT set to a scratch dir,
# then move the scratch dir into place.
_build_into() {
  local final=$1 name=$2; shift 2
  local parent tmp start end
  parent=$(dirname "$final")
  mkdir -p "$parent"
  tmp=$(mktemp -d "$parent/.build.XXXXXX")
  start=$(date +%s)
  log "building $name (cached afterwards in $final)"
  if ! OUT=$tmp "$@"; then
    rm -rf "$tmp"
    die "build of $name failed"
  fi
  end=$(date +%s)
  echo $((end - start)) > "$tmp/build-seconds"
  rm -rf "$final"
  mv "$tmp" "$final"
  log "built $name in $((end - start)) s"
}

_go_build_k8s() {
  local major minor
  major=${KUBERNETES_VERSION#v}; major=${major%%.*}
  minor=${KUBERNETES_VERSION#v*.}; minor=${minor%%.*}
  # The version variables are what `kubectl version`, discovery (/version) and
  # the components' --version report; without them they say v0.0.0-master.
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=$major"
  ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  # One go build for all four commands shares the (long) compile of the common
  # packages; kubelet is not run yet but a later issue needs it.
  go -C "$HACK_DIR/gomod/kubernetes" build -trimpath -ldflags "$ldflags" -o "$OUT/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubelet
}

build_kubernetes() {
  local d; d=$(k8s_bin_dir)
  [[ -x $d/kube-apiserver && -x $d/kube-controller-manager && -x $d/kube-scheduler && -x $d/kubelet ]] && return 0
  go_path_setup
  _build_into "$d" "kubernetes $KUBERNETES_VERSION" _go_build_k8s
}
