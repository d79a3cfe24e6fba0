# shellcheck shell=bash
# shellcheck disable=SC2034 # variables used by the scripts that source this file
# Shared paths and helpers for hack/stack and hack/build. Everything the stack
# creates lives outside the repository, under ~/.cache/tributary, so that a
# fresh clone reuses binaries built by an earlier checkout.

HACK_DIR=${HACK_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
REPO_DIR=$(cd "$HACK_DIR/.." && pwd)
TRIBUTARY_CACHE=${TRIBUTARY_CACHE:-$HOME/.cache/tributary}
STACK_DIR=${TRIBUTARY_STACK_DIR:-$TRIBUTARY_CACHE/stack}

# shellcheck source=hack/lib/versions.sh
source "$HACK_DIR/lib/versions.sh"

log() { printf '[stack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# Go is needed only to build; make the usual install locations visible even when
# the caller's PATH (e.g. make, CI) does not include them.
go_path_setup() {
  local d
  for d in /usr/local/go/bin /usr/lib/go/bin "$HOME/go/bin"; do
    case ":$PATH:" in *":$d:"*) ;; *) [[ -d $d ]] && PATH="$PATH:$d" ;; esac
  done
  export PATH
  command -v go >/dev/null || die "go is not installed (needed once to build the stack's binaries)"
}

# The port plan. Other issues (operator tests, the demo) depend on these
# numbers; change them only together with hack/README-stack.md.
ETCD_PORT=12379
ETCD_PEER_PORT=12380
APISERVER_PORT=16443
KCM_PORT=16257           # kube-controller-manager /healthz (https)
SCHEDULER_PORT=16259     # kube-scheduler /healthz (https)
MINIO_PORT=19000
MINIO_CONSOLE_PORT=19001
FERRETDB_PORT=27117
FERRETDB_DEBUG_PORT=18088  # FerretDB's /debug/readyz and metrics
POSTGRES_PORT=15432
FTP_PORT=2121
FTP_PASV_MIN=30000
FTP_PASV_MAX=30049
SFTP_PORT=2222
HTTP_PORT=18080

# Demo-only credentials: the whole stack listens on 127.0.0.1 only.
MINIO_USER=tributary
MINIO_PASSWORD=tributary-secret
MINIO_BUCKET=raw
PG_USER=tributary
PG_PASSWORD=tributary
PG_DATABASE=warehouse
FILE_USER=tributary          # one local account serves FTP and SFTP
FTP_PASSWORD=tributary-ftp   # checked by PAM (pam_pwdfile), not /etc/shadow
SFTP_PASSWORD=tributary-sftp # the account's real Unix password, checked by sshd
MONGO_DATABASE=retail
MONGO_COLLECTION=customer_transactions
