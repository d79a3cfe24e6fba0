# shellcheck shell=bash
# Pinned versions of everything the local stack builds. Each binary is cached
# under ~/.cache/tributary/<component>/<version>/ so a version bump rebuilds it
# and an unchanged version is reused across sessions and checkouts.

# Kubernetes: 1.34 is the newest minor whose kubelet still accepts cgroup v1
# (these machines mount cgroup v1; 1.35 refuses it by default).
# Keep hack/gomod/kubernetes/go.mod in step (require + staging replaces).
KUBERNETES_VERSION=v1.34.4

# MinIO tags are not semver; this pseudo-version is the commit of a release tag.
MINIO_VERSION=__MINIO__

# FerretDB 1.24 is the last line with the pure-Go SQLite backend (v2 needs a
# PostgreSQL extension). Keep hack/gomod/ferretdb/go.mod in step.
FERRETDB_VERSION=__FERRETDB__

# etcd 3.5, built from the Go module proxy (see hack/gomod/etcd/go.mod for why
# Debian's 3.4 is not used).
ETCD_VERSION=__ETCD__
