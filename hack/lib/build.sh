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
  chmod 755 "$tmp"
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
  # One go build for all commands shares the (long) compile of the common
  # packages. kubelet is not run yet but a later issue needs it; kubectl is
  # built so the tests use a client of the same minor as the server.
  go -C "$HACK_DIR/gomod/kubernetes" build -trimpath -ldflags "$ldflags" -o "$OUT/" \
    "${K8S_COMMANDS[@]/#/k8s.io/kubernetes/cmd/}"
}

K8S_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

build_kubernetes() {
  local d c; d=$(k8s_bin_dir)
  for c in "${K8S_COMMANDS[@]}" ""; do
    [[ -z $c ]] && return 0          # all present
    [[ -x $d/$c ]] || break
  done
  go_path_setup
  _build_into "$d" "kubernetes $KUBERNETES_VERSION" _go_build_k8s
}

_go_install_minio() {
  # MinIO's own install method; GOBIN puts the binary straight into the cache.
  # The module has no replace directives, so `go install pkg@version` works.
  GOBIN=$OUT go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO_VERSION"
}

build_minio() {
  local d; d=$(minio_bin_dir)
  [[ -x $d/minio ]] && return 0
  go_path_setup
  _build_into "$d" "minio $MINIO_VERSION" _go_install_minio
}

_go_build_ferretdb() {
  # FerretDB's build/version package embeds generated files (version.txt...)
  # that are not in the module zip, and panics at start-up without them when
  # the main package belongs to the FerretDB module -- which it does for both
  # `go install .../cmd/ferretdb@v1.24.2` and a build of that package from a
  # wrapper module. So: fetch the source pinned (and hash-checked) by the
  # wrapper's go.mod/go.sum, copy it to a scratch dir, write the version file
  # as upstream's `task gen-version` would, and build the real upstream CLI.
  local src work
  src=$(go -C "$HACK_DIR/gomod/ferretdb" mod download -json github.com/FerretDB/FerretDB \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n $src && -d $src ]] || { echo "could not download the FerretDB module" >&2; return 1; }
  work=$(mktemp -d)
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  echo "$FERRETDB_VERSION" > "$work/build/version/version.txt"
  echo "tributary-stack" > "$work/build/version/package.txt"
  local rc=0
  go -C "$work" build -trimpath -ldflags "-s -w" -o "$OUT/" ./cmd/ferretdb || rc=$?
  rm -rf "$work"
  return $rc
}

build_ferretdb() {
  local d; d=$(ferretdb_bin_dir)
  [[ -x $d/ferretdb ]] && return 0
  go_path_setup
  _build_into "$d" "ferretdb $FERRETDB_VERSION" _go_build_ferretdb
}

_go_build_etcd() {
  go -C "$HACK_DIR/gomod/etcd" build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
}

build_etcd() {
  # Debian's etcd-server package is used unless ETCD_SOURCE=build.
  [[ $ETCD_SOURCE == build ]] || return 0
  local d; d=$(etcd_bin_dir)
  [[ -x $d/etcd ]] && return 0
  go_path_setup
  _build_into "$d" "etcd $ETCD_VERSION" _go_build_etcd
}
