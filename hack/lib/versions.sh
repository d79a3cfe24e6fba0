# shellcheck shell=bash
# shellcheck disable=SC2034 # variables used by the scripts that source this file
# Pinned versions of everything the local stack builds. Each binary is cached
# under ~/.cache/tributary/<component>/<version>/ so a version bump rebuilds it
# and an unchanged version is reused across sessions and checkouts.

# Kubernetes: 1.34 is the newest minor whose kubelet still accepts cgroup v1
# (these machines mount cgroup v1; 1.35 refuses it by default).
# Keep hack/gomod/kubernetes/go.mod in step (require + staging replaces).
KUBERNETES_VERSION=v1.34.4

# MinIO's tags (RELEASE.<date>) are not semver, so a pseudo-version pins the
# commit. This is the last commit of the (now archived) community repository;
# the proxy here refuses the RELEASE.2025-10-15 commit's pseudo-version.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

# FerretDB 1.24 is the last line with the pure-Go SQLite backend (v2 needs a
# PostgreSQL extension). Keep hack/gomod/ferretdb/go.mod in step.
FERRETDB_VERSION=v1.24.2

# etcd: "debian" runs Debian's etcd-server package (3.4.23), "build" builds
# ETCD_VERSION from the Go module proxy via hack/gomod/etcd.
ETCD_SOURCE=${TRIBUTARY_ETCD_SOURCE:-debian}
ETCD_VERSION=v3.5.35
