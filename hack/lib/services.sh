# shellcheck shell=bash
# Start, health-check and configure each service of the local stack. Every
# service function set is: svc_<name>_start, svc_<name>_healthy, and
# optionally svc_<name>_stop (default: stop_daemon <name>).

K8S_BIN=$TRIBUTARY_CACHE/k8s/$KUBERNETES_VERSION/bin
KUBECONFIG_ADMIN=$STACK_DIR/kubeconfig
PG_BIN=/usr/lib/postgresql/15/bin
PG_DATA=$STACK_DIR/postgres/data
PG_SOCKET_DIR=$STACK_DIR/postgres/run
PG_TLS_DIR=$STACK_DIR/postgres/tls
PG_TLS_CONF=tributary-tls.conf   # in $PG_DATA, included from postgresql.conf
FILES_DIR=$STACK_DIR/files       # FTP, SFTP and HTTP roots live below this
FTP_ROOT=$FILES_DIR/ftp
SFTP_ROOT=$FILES_DIR/sftp
HTTP_ROOT=$FILES_DIR/http
SFTP_KEY=$STACK_DIR/sftp/id_ed25519

# Order matters: etcd before the API server, the API server before its clients.
ALL_SERVICES=(etcd kube-apiserver kube-controller-manager kube-scheduler minio ferretdb postgres vsftpd sftp http)

etcd_bin() {
  if [[ $ETCD_SOURCE == debian ]]; then echo /usr/bin/etcd; else echo "$(etcd_bin_dir)/etcd"; fi
}

_kcurl() {  # curl against the API server's health endpoints with the admin cert
  curl -sf --max-time 2 --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" --key "$PKI_DIR/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT$1"
}

# ---- etcd -----------------------------------------------------------------
svc_etcd_start() {
  mkdir -p "$STACK_DIR/etcd"
  # Single-member cluster on loopback. quota/compaction keep a long-lived dev
  # state dir from growing without bound.
  start_daemon etcd "$(etcd_bin)" \
    --name tributary \
    --data-dir "$STACK_DIR/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "tributary=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state new \
    --auto-compaction-retention 1 \
    --quota-backend-bytes 2147483648 \
    --log-level warn
}
svc_etcd_healthy() {
  curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'
}

# ---- kube-apiserver -------------------------------------------------------
svc_kube_apiserver_start() {
  # The front-proxy (requestheader) CA is what aggregated API servers and the
  # controllers' delegated authentication expect, as in kubeadm clusters.
  # --endpoint-reconciler-type none: the API server listens on loopback only,
  # and the `kubernetes` Endpoints object may not hold a loopback address (the
  # reconciler would log an error every 10 s); nothing here routes Service IPs.
  # RBAC as in a real cluster (the operator's ClusterRole is then tested for
  # real); Node so that a kubelet (later issue) is authorized like in kubeadm.
  # The service-account issuer/keys let the controller-manager mint tokens.
  start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 \
    --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI_DIR/apiserver.crt" \
    --tls-private-key-file "$PKI_DIR/apiserver.key" \
    --client-ca-file "$PKI_DIR/ca.crt" \
    --kubelet-client-certificate "$PKI_DIR/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI_DIR/apiserver-kubelet-client.key" \
    --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI_DIR/sa.pub" \
    --service-account-signing-key-file "$PKI_DIR/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true \
    --requestheader-client-ca-file "$PKI_DIR/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI_DIR/front-proxy-client.crt" \
    --proxy-client-key-file "$PKI_DIR/front-proxy-client.key" \
    --endpoint-reconciler-type none \
    --profiling=false \
    --v=1
}
svc_kube_apiserver_healthy() { [[ $(_kcurl /readyz) == ok ]]; }

# ---- kube-controller-manager ----------------------------------------------
svc_kube_controller_manager_start() {
  write_kubeconfig "$STACK_DIR/kube-controller-manager.kubeconfig" kube-controller-manager
  # --flex-volume-plugin-dir: keep it from creating /usr/libexec/kubernetes.
  # --controllers='*' is every default-on controller: job, ttl-after-finished,
  # garbage-collector, serviceaccount (creates `default` SAs), serviceaccount-
  # token, namespace, ... The cluster signer reuses the CA (as kubeadm does)
  # so a kubelet's CSRs can be approved and signed in a later issue.
  start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$STACK_DIR/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STACK_DIR/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STACK_DIR/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 \
    --secure-port "$KCM_PORT" \
    --leader-elect=false \
    --controllers '*' \
    --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI_DIR/sa.key" \
    --root-ca-file "$PKI_DIR/ca.crt" \
    --cluster-signing-cert-file "$PKI_DIR/ca.crt" \
    --cluster-signing-key-file "$PKI_DIR/ca.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --flex-volume-plugin-dir "$STACK_DIR/kube-controller-manager/flexvolume" \
    --profiling=false \
    --v=1
}
svc_kube_controller_manager_healthy() {
  [[ $(curl -sfk --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz") == ok ]]
}

# ---- kube-scheduler -------------------------------------------------------
svc_kube_scheduler_start() {
  write_kubeconfig "$STACK_DIR/kube-scheduler.kubeconfig" kube-scheduler
  start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig "$STACK_DIR/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$STACK_DIR/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$STACK_DIR/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 \
    --secure-port "$SCHEDULER_PORT" \
    --leader-elect=false \
    --profiling=false \
    --v=1
}
svc_kube_scheduler_healthy() {
  [[ $(curl -sfk --max-time 2 "https://127.0.0.1:$SCHEDULER_PORT/healthz") == ok ]]
}

# ---- MinIO ----------------------------------------------------------------
svc_minio_start() {
  mkdir -p "$STACK_DIR/minio/data"
  # MINIO_UPDATE=off: no update checks (there is no internet here anyway).
  start_daemon minio env \
    MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
    MINIO_UPDATE=off MINIO_BROWSER_REDIRECT=off \
    "$(minio_bin_dir)/minio" server "$STACK_DIR/minio/data" \
    --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" --quiet
}
svc_minio_healthy() {
  curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$MINIO_PORT/minio/health/ready"
}
# s3_curl METHOD PATH [curl args...]: a SigV4-signed request to MinIO.
s3_curl() {
  local method=$1 path=$2; shift 2
  curl -sS --fail-with-body --max-time 30 -X "$method" \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$MINIO_USER:$MINIO_PASSWORD" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    "http://127.0.0.1:$MINIO_PORT$path" "$@"
}
minio_setup() {
  # HEAD the bucket; create it only if missing (PUT on an existing bucket that
  # we own is an error in S3 semantics).
  if ! s3_curl HEAD "/$MINIO_BUCKET" -o /dev/null -I 2>/dev/null; then
    s3_curl PUT "/$MINIO_BUCKET" -o /dev/null || die "could not create bucket $MINIO_BUCKET"
  fi
}

# ---- FerretDB -------------------------------------------------------------
svc_ferretdb_start() {
  mkdir -p "$STACK_DIR/ferretdb/data" "$STACK_DIR/ferretdb/state"
  # synchronous(normal) with WAL (FerretDB's default journal) is crash-safe for
  # the database file and makes bulk seeding several times faster than FULL.
  start_daemon ferretdb "$(ferretdb_bin_dir)/ferretdb" \
    --handler=sqlite \
    "--sqlite-url=file:$STACK_DIR/ferretdb/data/?_pragma=synchronous(normal)" \
    "--listen-addr=127.0.0.1:$FERRETDB_PORT" \
    "--debug-addr=127.0.0.1:$FERRETDB_DEBUG_PORT" \
    --telemetry=disable \
    "--state-dir=$STACK_DIR/ferretdb/state" \
    --log-level=warn
}
svc_ferretdb_healthy() {
  tcp_open "$FERRETDB_PORT" && curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$FERRETDB_DEBUG_PORT/debug/metrics"
}

# ---- PostgreSQL -----------------------------------------------------------
_as_postgres() { runuser -u postgres -- "$@"; }
_pg_super() { _as_postgres "$PG_BIN/psql" -h "$PG_SOCKET_DIR" -p "$POSTGRES_PORT" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }

svc_postgres_start() {
  mkdir -p "$STACK_DIR/postgres"
  grant_traverse postgres "$STACK_DIR"
  chown postgres: "$STACK_DIR/postgres"
  if [[ ! -s $PG_DATA/PG_VERSION ]]; then
    log "initdb $PG_DATA"
    rm -rf "$PG_DATA"
    _as_postgres mkdir -p "$PG_DATA" "$PG_SOCKET_DIR"
    # Local socket: peer auth for the postgres superuser (setup only).
    # TCP: password (scram) for everyone.
    _as_postgres "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >> "$LOG_DIR/postgres.log" 2>&1 || die "initdb failed (see $LOG_DIR/postgres.log)"
  fi
  _as_postgres mkdir -p "$PG_SOCKET_DIR"
  # TLS settings go in before the first start, so a fresh server serves TLS at once.
  postgres_tls_write
  # pg_ctl daemonizes the postmaster itself; -c options keep it on loopback
  # and its socket inside the state dir (not /var/run/postgresql).
  # fsync=off: a throwaway test database; a crash means `hack/stack down` + rm.
  # The server log must be writable by `postgres`, so it lives beside the data.
  ln -sfn "$STACK_DIR/postgres/server.log" "$LOG_DIR/postgres-server.log"
  _as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$STACK_DIR/postgres/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -c port=$POSTGRES_PORT -c unix_socket_directories=$PG_SOCKET_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=64MB" \
    >> "$LOG_DIR/postgres.log" 2>&1 || die "PostgreSQL did not start (see $LOG_DIR/postgres.log and $LOG_DIR/postgres-server.log)"
  record_pid postgres "$(head -1 "$PG_DATA/postmaster.pid")"
}
svc_postgres_adopt() {
  [[ -s $PG_DATA/postmaster.pid ]] || return 1
  _as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 || return 1
  record_pid postgres "$(head -1 "$PG_DATA/postmaster.pid")"
}
svc_postgres_healthy() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT" -t 2; }
svc_postgres_stop() {
  if pid_of postgres >/dev/null || [[ -s $PG_DATA/postmaster.pid ]]; then
    _as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >> "$LOG_DIR/postgres.log" 2>&1 || true
  fi
  # If pg_ctl could not stop it, fall back to signalling the postmaster.
  stop_daemon postgres 5
}
postgres_setup() {
  # Idempotent: create the role and database only if missing; always (re)set
  # the password so a changed credential in this script takes effect.
  _pg_super <<SQL >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN;
  END IF;
END \$\$;
ALTER ROLE $PG_USER WITH LOGIN PASSWORD '$PG_PASSWORD';
SQL
  if [[ -z $(_pg_super -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'") ]]; then
    _pg_super -c "CREATE DATABASE $PG_DATABASE OWNER $PG_USER" >/dev/null
  fi
}

# postgres_tls_write: the serving certificate and key (from ensure_pki) where
# `postgres` can read them (it refuses a key others can read), and the ssl
# settings in a conf include, kept out of the -c options of the start command
# so that an existing server takes them with a reload. Sets PG_TLS_CHANGED=1
# when anything was written. pg_hba.conf keeps its `host` lines: TLS is
# offered, never demanded, so plain clients keep working.
postgres_tls_write() {
  local f conf tmp
  PG_TLS_CHANGED=0
  mkdir -p "$PG_TLS_DIR"
  chown postgres: "$PG_TLS_DIR"
  chmod 700 "$PG_TLS_DIR"
  for f in crt key; do
    if ! cmp -s "$PKI_DIR/postgres.$f" "$PG_TLS_DIR/server.$f"; then
      install -o postgres -g postgres -m 600 "$PKI_DIR/postgres.$f" "$PG_TLS_DIR/server.$f"
      PG_TLS_CHANGED=1
    fi
  done
  conf="# Written by hack/stack (postgres_tls_write); changes here are overwritten.
ssl = on
ssl_cert_file = '$PG_TLS_DIR/server.crt'
ssl_key_file = '$PG_TLS_DIR/server.key'
ssl_min_protocol_version = 'TLSv1.2'"
  if [[ ! -f $PG_DATA/$PG_TLS_CONF || $(< "$PG_DATA/$PG_TLS_CONF") != "$conf" ]]; then
    tmp=$(mktemp)
    printf '%s\n' "$conf" > "$tmp"
    install -o postgres -g postgres -m 600 "$tmp" "$PG_DATA/$PG_TLS_CONF"
    rm -f "$tmp"
    PG_TLS_CHANGED=1
  fi
  if ! grep -qxF "include_if_exists = '$PG_TLS_CONF'" "$PG_DATA/postgresql.conf"; then
    printf "\n# TLS for the clients that ask for it (hack/stack)\ninclude_if_exists = '%s'\n" "$PG_TLS_CONF" \
      >> "$PG_DATA/postgresql.conf"
    PG_TLS_CHANGED=1
  fi
}

# A TLS session verified against the local CA, as the stack's user.
_pg_tls_works() {
  [[ $(PGPASSWORD=$PG_PASSWORD PGSSLMODE=verify-full PGSSLROOTCERT=$PKI_DIR/ca.crt \
    "$PG_BIN/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$PG_USER" -d "$PG_DATABASE" -qAtX \
    -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>/dev/null) == t ]]
}

# postgres_tls: bring a running server's TLS up to date (an existing state dir
# from before TLS, or a renewed certificate). ssl settings take effect on a
# reload since PostgreSQL 10: no restart, open sessions are kept. Idempotent:
# nothing is reloaded when the files were current and TLS already works.
postgres_tls() {
  postgres_tls_write
  if [[ $PG_TLS_CHANGED == 1 ]] || ! _pg_tls_works; then
    log "PostgreSQL: reloading its configuration to serve TLS"
    _as_postgres "$PG_BIN/pg_ctl" -D "$PG_DATA" reload >> "$LOG_DIR/postgres.log" 2>&1 \
      || die "pg_ctl reload failed (see $LOG_DIR/postgres.log)"
    wait_for "PostgreSQL TLS" 15 _pg_tls_works \
      || die "PostgreSQL does not serve TLS after a reload (see $LOG_DIR/postgres-server.log)"
  fi
}

# ---- the local account used by FTP and SFTP -------------------------------
# grant_traverse USER DIR: let USER reach DIR by giving it search (x) permission
# on each ancestor that lacks it for others (typically /root, mode 700). An ACL
# entry grants exactly that to exactly that user, nothing to anyone else.
grant_traverse() {
  local user=$1 dir=$2 p
  p=$dir
  # Below DIR, ownership is handled by the caller.
  while [[ $p != / ]]; do
    p=$(dirname "$p")
    if [[ $(stat -c %A "$p") != ?????????[xt] ]]; then
      setfacl -m "u:$user:x" "$p"
    fi
  done
  if [[ -d $dir && $(stat -c %A "$dir") != ?????????[xt] ]]; then
    setfacl -m "u:$user:x" "$dir"
  fi
}

ensure_file_user() {
  if ! getent passwd "$FILE_USER" >/dev/null; then
    log "creating local user $FILE_USER (FTP/SFTP only, loopback only)"
    # Its shell must be listed in /etc/shells for vsftpd's PAM check; it is
    # never used: vsftpd offers no shell and sshd forces internal-sftp.
    useradd --system --no-create-home --home-dir "$FTP_ROOT" --shell /bin/bash "$FILE_USER"
  fi
  # The Unix password is the SFTP password (sshd checks /etc/shadow with
  # UsePAM no). FTP uses its own password file through PAM (below).
  echo "$FILE_USER:$SFTP_PASSWORD" | chpasswd
  mkdir -p "$FILES_DIR"
  grant_traverse "$FILE_USER" "$FILES_DIR"
}

# ---- vsftpd (FTP + optional explicit FTPS) --------------------------------
svc_vsftpd_start() {
  mkdir -p "$STACK_DIR/vsftpd/empty" "$FTP_ROOT"
  chmod 755 "$STACK_DIR/vsftpd/empty"
  # A dedicated PAM service checks the FTP password against a file, so the FTP
  # and SFTP passwords of the one account can differ (the SFTP one is the real
  # Unix password). pam_permit for account: the account has no expiry policy.
  printf '%s:%s\n' "$FILE_USER" "$(openssl passwd -6 "$FTP_PASSWORD")" > "$STACK_DIR/vsftpd/passwd"
  chmod 600 "$STACK_DIR/vsftpd/passwd"
  cat > /etc/pam.d/tributary-vsftpd <<PAM
# Written by tributary hack/stack: FTP login for the local test stack only.
auth    required pam_pwdfile.so pwdfile=$STACK_DIR/vsftpd/passwd
account required pam_permit.so
session required pam_permit.so
PAM
  cat > "$STACK_DIR/vsftpd/vsftpd.conf" <<CONF
# Generated by hack/stack. Standalone (listen=YES), foreground (background=NO)
# so that hack/stack supervises it; loopback only.
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$FTP_PORT
background=NO
anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
# chroot into the FTP root so that /procedures means the same on FTP and SFTP.
local_root=$FTP_ROOT
chroot_local_user=YES
allow_writeable_chroot=YES
secure_chroot_dir=$STACK_DIR/vsftpd/empty
pam_service_name=tributary-vsftpd
# vsftpd's seccomp filter breaks under some container runtimes; loopback only.
seccomp_sandbox=NO
pasv_enable=YES
pasv_min_port=$FTP_PASV_MIN
pasv_max_port=$FTP_PASV_MAX
pasv_address=127.0.0.1
pasv_addr_resolve=NO
port_enable=YES
connect_from_port_20=NO
use_localtime=NO
xferlog_enable=YES
xferlog_std_format=NO
vsftpd_log_file=$LOG_DIR/vsftpd-transfers.log
dual_log_enable=NO
# Explicit FTPS (AUTH TLS) on the same port, optional: plain FTP still works.
ssl_enable=YES
rsa_cert_file=$PKI_DIR/ftp.crt
rsa_private_key_file=$PKI_DIR/ftp.key
allow_anon_ssl=NO
force_local_data_ssl=NO
force_local_logins_ssl=NO
# vsftpd 3.0.3: ssl_tlsv1 means "TLS 1.0 or later" (Debian builds negotiate up
# to TLS 1.3); SSLv2/v3 stay off.
ssl_tlsv1=YES
ssl_sslv2=NO
ssl_sslv3=NO
require_ssl_reuse=NO
ssl_ciphers=HIGH
CONF
  # vsftpd writes start-up errors ("500 OOPS: ...") to fd 0, as an inetd
  # service would; point fd 0 at its log so they are not lost.
  STDIN_FILE=$LOG_DIR/vsftpd.log start_daemon vsftpd /usr/sbin/vsftpd "$STACK_DIR/vsftpd/vsftpd.conf"
}
svc_vsftpd_healthy() {
  curl -sf --max-time 3 -o /dev/null --list-only "ftp://$FILE_USER:$FTP_PASSWORD@127.0.0.1:$FTP_PORT/"
}

# ---- SFTP (OpenSSH internal-sftp) -----------------------------------------
svc_sftp_start() {
  local d=$STACK_DIR/sftp
  mkdir -p "$d" /run/sshd "$SFTP_ROOT"
  [[ -s $d/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C tributary-stack-host -f "$d/ssh_host_ed25519_key"
  [[ -s $SFTP_KEY ]] || ssh-keygen -q -t ed25519 -N '' -C tributary-stack-sftp -f "$SFTP_KEY"
  cp "$SFTP_KEY.pub" "$d/authorized_keys"
  # sshd reads authorized_keys as the target user.
  chown "$FILE_USER" "$d/authorized_keys"
  chmod 644 "$d/authorized_keys"
  setfacl -m "u:$FILE_USER:x" "$d"
  # Chroot gives SFTP the same absolute layout as FTP (/procedures/...). sshd
  # requires every component of the chroot path to be root-owned and not
  # group/other-writable; that holds under a root-owned home (not under /tmp,
  # whose sticky 1777 fails). Otherwise fall back to a start directory only.
  local chroot_ok=1 p=$SFTP_ROOT
  while :; do
    if [[ $(stat -c %u "$p") != 0 || $(stat -c %A "$p") == ?????w???? || $(stat -c %A "$p") == ????????w? ]]; then
      chroot_ok=0; break
    fi
    [[ $p == / ]] && break
    p=$(dirname "$p")
  done
  local match
  if ((chroot_ok)); then
    match="  ChrootDirectory $SFTP_ROOT
  ForceCommand internal-sftp -d /"
  else
    log "warning: $SFTP_ROOT cannot be an sshd chroot; SFTP paths are relative to it instead"
    match="  ForceCommand internal-sftp -d $SFTP_ROOT"
  fi
  cat > "$d/sshd_config" <<CONF
# Generated by hack/stack: an SFTP-only sshd on loopback, separate from any
# system sshd (own port, host key, pid file; no PAM, no shells, no forwarding).
Port $SFTP_PORT
ListenAddress 127.0.0.1
HostKey $d/ssh_host_ed25519_key
PidFile $d/sshd.pid
UsePAM no
PermitRootLogin no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile $d/authorized_keys
StrictModes no
AllowUsers $FILE_USER
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTTY no
PrintMotd no
LogLevel INFO
Subsystem sftp internal-sftp
Match User $FILE_USER
$match
CONF
  # Files inside the chroot belong to the user so it can upload.
  chown -R "$FILE_USER:" "$SFTP_ROOT"/. 2>/dev/null || true
  chown root: "$SFTP_ROOT"; chmod 755 "$SFTP_ROOT"
  /usr/sbin/sshd -t -f "$d/sshd_config" || die "invalid $d/sshd_config"
  # -D: stay in the foreground (supervised by us); -e: log to stderr (our log).
  start_daemon sftp /usr/sbin/sshd -D -e -f "$d/sshd_config"
}
svc_sftp_healthy() {
  # The SSH identification string proves sshd is accepting connections.
  local banner
  banner=$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SFTP_PORT; head -c 8 <&3" 2>/dev/null) || return 1
  [[ $banner == SSH-2.0* ]]
}

# ---- HTTP file server -----------------------------------------------------
svc_http_start() {
  mkdir -p "$HTTP_ROOT"
  start_daemon http /usr/bin/python3 "$HACK_DIR/lib/fileserver.py" \
    --bind 127.0.0.1 --port "$HTTP_PORT" --root "$HTTP_ROOT"
}
svc_http_healthy() { curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz"; }
