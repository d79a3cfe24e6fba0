# shellcheck shell=bash
# Installs the Debian packages and the Python venv the stack needs, only when
# something is missing, so `hack/stack up` works unattended on a fresh machine
# and costs nothing on a warm one.

# Debian packages -> a file whose presence proves the package is installed.
# (Checking files is ~100x faster than asking dpkg, and `up` runs this each time.)
STACK_PACKAGES=(
  "postgresql-15:/usr/lib/postgresql/15/bin/pg_ctl"
  "postgresql-client-15:/usr/bin/psql"
  "vsftpd:/usr/sbin/vsftpd"
  "openssh-server:/usr/sbin/sshd"
  "etcd-server:/usr/bin/etcd"
  "libpam-pwdfile:/lib/x86_64-linux-gnu/security/pam_pwdfile.so"
  "acl:/usr/bin/setfacl"
  "openssl:/usr/bin/openssl"
  "curl:/usr/bin/curl"
  "python3-venv:/usr/lib/python3.11/ensurepip/__init__.py"
  "procps:/usr/bin/ps"
  "util-linux:/usr/bin/setsid"
)

ensure_packages() {
  local entry pkg file missing=()
  for entry in "${STACK_PACKAGES[@]}"; do
    pkg=${entry%%:*}; file=${entry#*:}
    [[ -e $file ]] || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  # De-duplicate while keeping order.
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
  log "installing Debian packages: ${missing[*]}"
  mkdir -p "$TRIBUTARY_CACHE/logs"
  # Package maintainer scripts would start vsftpd on :21, sshd on :22, etcd on
  # :2379 and a PostgreSQL cluster on :5432. The stack runs its own instances on
  # its own ports, so forbid service starts during the install (policy-rc.d
  # exit 101 = "action not allowed"), restoring any policy that was there.
  local policy=/usr/sbin/policy-rc.d saved=""
  if [[ -e $policy ]]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
  printf '#!/bin/sh\n# written by tributary hack/stack during apt-get install\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  local rc=0
  {
    # An apt list older than a day may point at versions the mirror no longer has.
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1) ]]; then
      apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  } >> "$TRIBUTARY_CACHE/logs/apt.log" 2>&1 || rc=$?
  if [[ -n $saved ]]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
  [[ $rc -eq 0 ]] || die "apt-get install failed (see $TRIBUTARY_CACHE/logs/apt.log)"
  # Even with policy-rc.d, a package's own service must never hold our ports or
  # the system ones; stop anything the packages may have left running.
  local svc
  for svc in ssh vsftpd etcd postgresql; do
    service "$svc" stop >/dev/null 2>&1 || true
  done
}

# The Python venv holds the MongoDB client used by the seeder and the tests.
PYMONGO_VERSION=4.10.1
VENV_DIR=$TRIBUTARY_CACHE/venv

ensure_venv() {
  local stamp=$VENV_DIR/.tributary-pymongo-$PYMONGO_VERSION
  [[ -e $stamp ]] && return 0
  log "creating Python venv $VENV_DIR (pymongo $PYMONGO_VERSION)"
  rm -rf "$VENV_DIR"
  # Debian's interpreter, not whatever python3 is first on PATH: the venv must
  # survive pyenv/asdf changes on the developer's machine.
  /usr/bin/python3 -m venv "$VENV_DIR"
  mkdir -p "$TRIBUTARY_CACHE/logs"
  "$VENV_DIR/bin/pip" install -q "pymongo==$PYMONGO_VERSION" >> "$TRIBUTARY_CACHE/logs/pip.log" 2>&1 \
    || die "pip install pymongo failed (see $TRIBUTARY_CACHE/logs/pip.log)"
  touch "$stamp"
}
