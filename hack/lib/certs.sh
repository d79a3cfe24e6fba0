# shellcheck shell=bash
# A local PKI for the control plane, made with openssl once per state dir:
# one CA signs the API server's serving cert, the client certs (CN = user,
# O = group: that is how kube-apiserver's x509 authenticator names callers),
# and later the kubelet's certificates (controller-manager's cluster signer).
# Service-account tokens are signed with a separate RSA key pair.

PKI_DIR=$STACK_DIR/pki

_openssl() { openssl "$@" 2>> "$LOG_DIR/openssl.log" >/dev/null; }

# _client_cert NAME SUBJECT : EC P-256 key + cert signed by the CA ($CA_NAME,
# default ca), valid 10 years.
_client_cert() {
  local name=$1 subj=$2 ext ca=${CA_NAME:-ca}
  [[ -s $PKI_DIR/$name.crt ]] && return 0
  ext=$(mktemp)
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' > "$ext"
  _openssl ecparam -name prime256v1 -genkey -noout -out "$PKI_DIR/$name.key"
  _openssl req -new -key "$PKI_DIR/$name.key" -subj "$subj" -out "$PKI_DIR/$name.csr"
  _openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/$ca.crt" -CAkey "$PKI_DIR/$ca.key" \
    -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$PKI_DIR/$name.crt"
  rm -f "$ext" "$PKI_DIR/$name.csr"
}

ensure_pki() {
  mkdir -p "$PKI_DIR" "$LOG_DIR"
  chmod 700 "$PKI_DIR"
  if [[ ! -s $PKI_DIR/ca.crt ]]; then
    log "creating the local CA and certificates in $PKI_DIR"
    # The CA key is RSA because the controller-manager's cluster signer (which
    # reuses it, as kubeadm does) accepts RSA and ECDSA alike, and RSA keeps the
    # CA compatible with every client.
    _openssl genrsa -out "$PKI_DIR/ca.key" 2048
    _openssl req -x509 -new -key "$PKI_DIR/ca.key" -sha256 -days 3650 \
      -subj "/CN=tributary-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI_DIR/ca.crt"
  fi
  if [[ ! -s $PKI_DIR/apiserver.crt ]]; then
    local ext; ext=$(mktemp)
    # 10.96.0.1 is the first address of --service-cluster-ip-range: the
    # in-cluster `kubernetes` Service that pods (a later issue) will dial.
    cat > "$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EXT
    _openssl ecparam -name prime256v1 -genkey -noout -out "$PKI_DIR/apiserver.key"
    _openssl req -new -key "$PKI_DIR/apiserver.key" -subj "/CN=kube-apiserver" -out "$PKI_DIR/apiserver.csr"
    _openssl x509 -req -in "$PKI_DIR/apiserver.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
      -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$PKI_DIR/apiserver.crt"
    rm -f "$ext" "$PKI_DIR/apiserver.csr"
  fi
  _client_cert admin "/O=system:masters/CN=admin"
  _client_cert kube-controller-manager "/CN=system:kube-controller-manager"
  _client_cert kube-scheduler "/CN=system:kube-scheduler"
  # Lets the API server reach kubelets (logs/exec) once a later issue runs one.
  _client_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  # A separate CA for the front proxy (requestheader authentication), as kubeadm does.
  if [[ ! -s $PKI_DIR/front-proxy-ca.crt ]]; then
    _openssl genrsa -out "$PKI_DIR/front-proxy-ca.key" 2048
    _openssl req -x509 -new -key "$PKI_DIR/front-proxy-ca.key" -sha256 -days 3650 \
      -subj "/CN=tributary-front-proxy-ca" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
      -out "$PKI_DIR/front-proxy-ca.crt"
  fi
  CA_NAME=front-proxy-ca _client_cert front-proxy-client "/CN=front-proxy-client"
  if [[ ! -s $PKI_DIR/sa.key ]]; then
    _openssl genrsa -out "$PKI_DIR/sa.key" 2048
    _openssl rsa -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub"
  fi
  # PostgreSQL's serving certificate, signed by the local CA so that clients can
  # verify it (sslmode verify-full with the CA as root); see postgres_tls in services.sh.
  if [[ ! -s $PKI_DIR/postgres.crt ]]; then
    local pg_ext; pg_ext=$(mktemp)
    cat > "$pg_ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EXT
    _openssl ecparam -name prime256v1 -genkey -noout -out "$PKI_DIR/postgres.key"
    _openssl req -new -key "$PKI_DIR/postgres.key" -subj "/CN=127.0.0.1" -out "$PKI_DIR/postgres.csr"
    _openssl x509 -req -in "$PKI_DIR/postgres.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
      -CAcreateserial -days 3650 -sha256 -extfile "$pg_ext" -out "$PKI_DIR/postgres.crt"
    rm -f "$pg_ext" "$PKI_DIR/postgres.csr"
  fi
  # Self-signed certificate for the FTP server's optional explicit TLS (FTPS).
  if [[ ! -s $PKI_DIR/ftp.crt ]]; then
    _openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI_DIR/ftp.key" -out "$PKI_DIR/ftp.crt" \
      -days 3650 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost"
  fi
}

# write_kubeconfig FILE CERT_NAME : a kubeconfig with embedded credentials, so
# it keeps working if copied elsewhere.
write_kubeconfig() {
  local file=$1 name=$2 tmp
  tmp=$(mktemp "$file.XXXXXX")
  cat > "$tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: tributary
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI_DIR/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 < "$PKI_DIR/$name.crt")
    client-key-data: $(base64 -w0 < "$PKI_DIR/$name.key")
contexts:
- name: tributary
  context:
    cluster: tributary
    user: $name
    namespace: default
current-context: tributary
KC
  chmod 600 "$tmp"
  mv "$tmp" "$file"
}
