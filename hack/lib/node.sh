# shellcheck shell=bash
# shellcheck disable=SC2034 # variables used by hack/node and tests/node
# A real Kubernetes node for the local stack: Debian's containerd (CRI plugin)
# and runc, the CNI bridge plugin, and the kubelet built by hack/stack, all on
# 127.0.0.1 and all state under $STACK_DIR. Sourced by hack/node after
# common.sh, proc.sh and certs.sh (their helpers: log, start_daemon,
# stop_daemon, pid_of, wait_for, _openssl, write_kubeconfig, ensure_pki).

log() { printf '[node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[node] ERROR: %s\n' "$*" >&2; exit 1; }

# The node's name is its address. The kubelet refuses a loopback --node-ip,
# but a --hostname-override that parses as an IP becomes the InternalIP
# as is (pkg/kubelet/nodestatus.NodeAddress). kube-apiserver reaches the
# kubelet (logs, exec) at that InternalIP, and the kubelet listens on loopback
# only, so the name must be 127.0.0.1 for `kubectl logs` to work.
NODE_NAME=127.0.0.1
# Ports follow the stack's 16xxx plan for Kubernetes components (the usual
# 10250/10248 may be held by another cluster on a developer's machine).
KUBELET_PORT=16250
KUBELET_HEALTHZ_PORT=16248

K8S_BIN=$TRIBUTARY_CACHE/k8s/$KUBERNETES_VERSION/bin
CONTAINERD_DIR=$STACK_DIR/containerd
CONTAINERD_SOCK=$CONTAINERD_DIR/containerd.sock
KUBELET_DIR=$STACK_DIR/kubelet
CNI_DIR=$STACK_DIR/cni
NODE_STATE=$STACK_DIR/node          # baselines recorded by `up`, restored by `down`
CNI_BIN_DIR=/usr/lib/cni            # Debian's containernetworking-plugins
CNI_BRIDGE=tribr0
# A private /16 for non-host-network pods on the bridge (room for maxPods);
# it does not overlap the service range (10.96.0.0/16) and is reachable only
# from this machine.
POD_CIDR=10.244.0.0/16
# The sandbox ("pause") image, built locally from hack/images/pause.c.
PAUSE_IMAGE=localhost/tributary/pause:1
# Image references the test bed uses; hack/images/build makes them.
RUNNER_IMAGE=localhost/tributary/runner:dev
OPERATOR_IMAGE=localhost/tributary/operator:dev
IMAGES_CACHE=$TRIBUTARY_CACHE/images

# Debian packages -> a file proving each is installed (see install.sh).
NODE_PACKAGES=(
  "containerd:/usr/bin/containerd"
  "runc:/usr/sbin/runc"
  "containernetworking-plugins:$CNI_BIN_DIR/bridge"
  "iptables:/usr/sbin/iptables"     # a dependency of the CNI plugins
  "umoci:/usr/bin/umoci"            # builds the OCI images (hack/images/build)
  "gcc:/usr/bin/gcc"                # builds the static pause program
  "libc6-dev:/usr/lib/x86_64-linux-gnu/libc.a"
  "ca-certificates:/etc/ssl/certs/ca-certificates.crt"  # copied into images
  "curl:/usr/bin/curl"
  "openssl:/usr/bin/openssl"
  "iproute2:/usr/sbin/ip"
)

# Kernel settings the kubelet changes when protectKernelDefaults is false
# (pkg/kubelet/cm.setupKernelTunables), plus ip_forward, which the CNI bridge
# plugin turns on for its gateway. `up` records the machine's values once and
# `down` puts them back, so the node leaves the machine as it found it.
NODE_SYSCTLS=(vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops
  kernel/keys/root_maxkeys kernel/keys/root_maxbytes net/ipv4/ip_forward)

ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
crictl_() {
  # A config file of our own: crictl otherwise warns that /etc/crictl.yaml is missing.
  [[ -s $CONTAINERD_DIR/crictl.yaml ]] || {
    mkdir -p "$CONTAINERD_DIR"
    printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' "$CONTAINERD_SOCK" "$CONTAINERD_SOCK" > "$CONTAINERD_DIR/crictl.yaml"
  }
  "$CRICTL" --config "$CONTAINERD_DIR/crictl.yaml" "$@"
}
kubectl_() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# ---- installation ------------------------------------------------------------

node_packages() {
  local entry pkg file missing=()
  for entry in "${NODE_PACKAGES[@]}"; do
    pkg=${entry%%:*}; file=${entry#*:}; file=${file%% *}
    [[ -e $file ]] || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing Debian packages: ${missing[*]}"
  mkdir -p "$TRIBUTARY_CACHE/logs"
  # The containerd package would start the system containerd.service (its
  # own socket and /var/lib/containerd); ours runs with its own config. Forbid
  # service starts during the install (policy-rc.d exit 101) and put back any
  # policy file that was there.
  local policy=/usr/sbin/policy-rc.d saved="" rc=0
  if [[ -e $policy ]]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
  printf '#!/bin/sh\n# written by tributary hack/node during apt-get install\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  {
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1) ]]; then
      apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
  } >> "$TRIBUTARY_CACHE/logs/apt.log" 2>&1 || rc=$?
  if [[ -n $saved ]]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
  [[ $rc -eq 0 ]] || die "apt-get install failed (see $TRIBUTARY_CACHE/logs/apt.log)"
  service containerd stop >/dev/null 2>&1 || true
}

# crictl talks CRI to containerd: it is the tool for debugging a pod on the
# node (hack/node crictl ps -a), and `down` uses it when present to stop pod
# sandboxes the way the kubelet would (CNI DEL, unmounts). Built on first use
# from the Go module proxy (a few minutes), cached by version; `up` does not
# need it.
CRICTL_VERSION=v1.34.0
CRICTL=$TRIBUTARY_CACHE/crictl/$CRICTL_VERSION/crictl

build_crictl() {
  [[ -x $CRICTL ]] && return 0
  go_path_setup
  log "building crictl $CRICTL_VERSION (once)"
  local dir=${CRICTL%/*} start=$SECONDS
  mkdir -p "$dir" "$TRIBUTARY_CACHE/logs"
  GOBIN="$dir" CGO_ENABLED=0 go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" \
    >> "$TRIBUTARY_CACHE/logs/crictl-build.log" 2>&1 || die "building crictl failed (see $TRIBUTARY_CACHE/logs/crictl-build.log)"
  echo $((SECONDS - start)) > "$dir/build-seconds"
}

# ---- certificates ------------------------------------------------------------

# The kubelet's client certificate: CN system:node:<name>, O system:nodes is
# what the Node authorizer and the NodeRestriction rules expect. Signed
# directly by the stack CA (simpler than TLS bootstrap, same result).
# Its serving certificate names 127.0.0.1, where kube-apiserver dials it.
node_pki() {
  ensure_pki
  _client_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME"
  if [[ ! -s $PKI_DIR/kubelet-serving.crt ]]; then
    local ext; ext=$(mktemp)
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$ext"
    _openssl ecparam -name prime256v1 -genkey -noout -out "$PKI_DIR/kubelet-serving.key"
    _openssl req -new -key "$PKI_DIR/kubelet-serving.key" -subj "/O=system:nodes/CN=system:node:$NODE_NAME" \
      -out "$PKI_DIR/kubelet-serving.csr"
    _openssl x509 -req -in "$PKI_DIR/kubelet-serving.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
      -CAcreateserial -days 3650 -sha256 -extfile "$ext" -out "$PKI_DIR/kubelet-serving.crt"
    rm -f "$ext" "$PKI_DIR/kubelet-serving.csr"
  fi
  mkdir -p "$KUBELET_DIR"
  write_kubeconfig "$KUBELET_DIR/kubeconfig" kubelet-client
}

# ---- configuration -------------------------------------------------------------

# write_if_changed FILE: stdin -> FILE; exit 0 if the content changed (so the
# daemon reading it needs a restart), 1 if it was already the same.
write_if_changed() {
  local file=$1 tmp
  mkdir -p "$(dirname "$file")"
  tmp=$(mktemp "$file.XXXXXX")
  cat > "$tmp"
  if [[ -e $file ]] && cmp -s "$tmp" "$file"; then rm -f "$tmp"; return 1; fi
  mv "$tmp" "$file"
  return 0
}

CONTAINERD_CHANGED=0
KUBELET_CHANGED=0
CNI_CHANGED=0

write_containerd_config() {
  mkdir -p "$CONTAINERD_DIR/root" "$CONTAINERD_DIR/state" "$CONTAINERD_DIR/certs.d/_default"
  # Every registry resolves to a closed loopback port: this node never pulls.
  # An image that was not built and imported locally fails at once with
  # "connection refused" instead of reaching out to the internet. (_default
  # applies to every registry host. Debian's containerd 1.6.20 ignores a lone
  # `server` key here, so the same address is also given as a [host] entry,
  # which it honours; checked with `ctr --debug images pull --hosts-dir`.)
  write_if_changed "$CONTAINERD_DIR/certs.d/_default/hosts.toml" <<'EOF' || true
# tributary hack/node: no pulls. Images are built and imported locally.
server = "http://127.0.0.1:9"
[host."http://127.0.0.1:9"]
  capabilities = ["pull", "resolve"]
EOF
  # shellcheck disable=SC2015 # "|| true": unchanged is not an error
  write_if_changed "$CONTAINERD_DIR/config.toml" <<EOF && CONTAINERD_CHANGED=1 || true
# Written by tributary hack/node; regenerated on every \`hack/node up\`.
version = 2
# Own root, state and sockets: independent of any system containerd.
root = "$CONTAINERD_DIR/root"
state = "$CONTAINERD_DIR/state"
# Snapshotters we do not use would only log errors at start-up.
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_DIR/opt"

[plugins."io.containerd.grpc.v1.cri"]
  # Built by hack/images/build-pause and imported on \`up\`; never pulled.
  sandbox_image = "$PAUSE_IMAGE"
  # exec/attach/port-forward streams: loopback only.
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  # This machine's root lacks CAP_SYS_RESOURCE, so a process cannot lower its
  # oom_score_adj below its parent's: runc fails with "failed to update
  # /proc/self/oom_score_adj: Permission denied" for the kubelet's -998
  # (sandboxes). Clamp to containerd's own score instead.
  restrict_oom_score_adj = true
  # Pod network namespaces are bind-mounted under our state dir, not
  # /var/run/netns, so \`down\` knows exactly which mounts are ours.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroup v1 with the cgroupfs driver: there is no systemd here, and
        # the kubelet is configured with the same driver.
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "$CONTAINERD_DIR/state/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$CNI_DIR/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CONTAINERD_DIR/certs.d"
EOF
}

write_cni_config() {
  mkdir -p "$CNI_DIR/ipam"
  # A plain Linux bridge with host-local addresses. isGateway gives the bridge
  # (the host) an address in the pod subnet so the kubelet can probe pod IPs.
  # No ipMasq and no default route: non-host-network pods talk to each other
  # and to the host, never beyond. Pods that need the stack's services use
  # hostNetwork: everything listens on 127.0.0.1.
  # shellcheck disable=SC2015 # "|| true": unchanged is not an error
  write_if_changed "$CNI_DIR/net.d/10-tributary.conflist" <<EOF && CNI_CHANGED=1 || true
{
  "cniVersion": "1.0.0",
  "name": "tributary",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "dataDir": "$CNI_DIR/ipam"
      }
    }
  ]
}
EOF
}

write_kubelet_config() {
  mkdir -p "$KUBELET_DIR/root" "$KUBELET_DIR/pod-logs"
  # shellcheck disable=SC2015 # "|| true": unchanged is not an error
  write_if_changed "$KUBELET_DIR/config.yaml" <<EOF && KUBELET_CHANGED=1 || true
# Written by tributary hack/node; regenerated on every \`hack/node up\`.
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Loopback only: the API server dials 127.0.0.1:$KUBELET_PORT (the node's InternalIP).
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI_DIR/kubelet-serving.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet-serving.key
# Only the API server (client cert from the stack CA) may call the kubelet;
# what it may do is decided by the API server (SubjectAccessReview).
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
imageServiceEndpoint: unix://$CONTAINERD_SOCK
# cgroup v1 and no systemd: the cgroupfs driver, as in containerd's runc options.
cgroupDriver: cgroupfs
# A dev box may have swap; the kubelet then runs pods without swap (NoSwap).
failSwapOn: false
# A shared dev machine runs close to full disk at times; evicting test pods
# because the disk is 85 % full would only make tests flaky. Evict only when
# the machine is really out of room.
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "1%"
  nodefs.inodesFree: "1%"
  imagefs.available: "1%"
# Our images cannot be pulled again once garbage-collected: keep them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Container logs under the state dir (the kubelet still links them from
# /var/log/containers; \`down\` removes those links).
podLogsDir: $KUBELET_DIR/pod-logs
# No cluster DNS runs; pods use the host's resolver (the kubelet records a
# MissingClusterDNS event and falls back to the Default policy).
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
serializeImagePulls: false
# Pods of Jobs start quickly after one another; the default QPS (50/100) is
# fine, but status updates should not wait for the 10 s node-status period.
nodeStatusUpdateFrequency: 10s
# kube-scheduler counts every pod bound to a node until it is deleted,
# finished ones included: with the default 110, a few runs' worth of
# completed Job pods left the node "Too many pods". Running pods are what
# cost memory (~13 MiB each), and the operator's parallelism bounds those.
maxPods: 1000
EOF
}

# ---- machine baselines -----------------------------------------------------------

record_baselines() {
  mkdir -p "$NODE_STATE"
  local k
  # Only with no kubelet running: its values are not the machine's.
  if [[ ! -s $NODE_STATE/sysctls ]] && ! pid_of kubelet >/dev/null; then
    for k in "${NODE_SYSCTLS[@]}"; do
      [[ -r /proc/sys/$k ]] && printf '%s %s\n' "$k" "$(cat "/proc/sys/$k")"
    done > "$NODE_STATE/sysctls.tmp"
    mv "$NODE_STATE/sysctls.tmp" "$NODE_STATE/sysctls"
  fi
  # The kubelet adds KUBE-* chains to iptables (a canary and KUBE-FIREWALL);
  # remember whether they were there before us, so `down` removes only ours.
  if [[ ! -e $NODE_STATE/iptables-chains-preexisting ]]; then
    if iptables -S KUBE-KUBELET-CANARY >/dev/null 2>&1; then echo yes; else echo no; fi \
      > "$NODE_STATE/iptables-chains-preexisting"
  fi
  # Likewise /var/log/containers (a path the kubelet hard-codes).
  if [[ ! -e $NODE_STATE/var-log-containers-preexisting ]]; then
    if [[ -d /var/log/containers ]]; then echo yes; else echo no; fi > "$NODE_STATE/var-log-containers-preexisting"
  fi
}

restore_baselines() {
  local k v
  if [[ -s $NODE_STATE/sysctls ]]; then
    while read -r k v; do
      if [[ -w /proc/sys/$k ]]; then echo "$v" > "/proc/sys/$k" 2>/dev/null || true; fi
    done < "$NODE_STATE/sysctls"
    rm -f "$NODE_STATE/sysctls"
  fi
  if [[ $(cat "$NODE_STATE/iptables-chains-preexisting" 2>/dev/null) == no ]]; then
    local t tb
    for t in iptables ip6tables; do
      command -v "$t" >/dev/null || continue
      while "$t" -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
      while "$t" -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
      "$t" -F KUBE-FIREWALL 2>/dev/null || true
      "$t" -X KUBE-FIREWALL 2>/dev/null || true
      for tb in filter nat mangle; do "$t" -t "$tb" -X KUBE-KUBELET-CANARY 2>/dev/null || true; done
      "$t" -t mangle -X KUBE-IPTABLES-HINT 2>/dev/null || true
    done
  fi
  rm -f "$NODE_STATE/iptables-chains-preexisting"
  if [[ -d /var/log/containers ]]; then
    local l
    for l in /var/log/containers/*; do
      [[ -L $l && $(readlink "$l") == "$KUBELET_DIR/"* ]] && rm -f "$l"
    done
    if [[ $(cat "$NODE_STATE/var-log-containers-preexisting" 2>/dev/null) == no ]]; then
      rmdir /var/log/containers 2>/dev/null || true
    fi
  fi
  rm -f "$NODE_STATE/var-log-containers-preexisting"
}

# ---- daemons -------------------------------------------------------------------

containerd_healthy() { ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }

start_containerd() {
  if pid_of containerd >/dev/null; then
    if [[ $CONTAINERD_CHANGED == 1 ]]; then
      log "containerd's configuration changed; restarting it (running containers keep running)"
      stop_daemon_only containerd
    elif wait_for containerd 10 containerd_healthy; then
      return 0
    else
      stop_daemon_only containerd
    fi
  fi
  log "starting containerd"
  # The proxy variables are a second guard next to certs.d/_default: any
  # registry request goes to a closed loopback port.
  start_daemon containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
    containerd --config "$CONTAINERD_DIR/config.toml"
  wait_for containerd 30 containerd_healthy || {
    tail -n 20 "$LOG_DIR/containerd.log" >&2
    die "containerd did not come up (log: $LOG_DIR/containerd.log)"
  }
}

# stop_daemon_only NAME: stop the daemon itself, not its process group's
# descendants. containerd's shims are its children but must outlive a
# containerd restart (they are re-adopted on start-up).
stop_daemon_only() {
  local pid i
  pid=$(pid_of "$1") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
  rm -f "$RUN_DIR/$1.pid"
}

kubelet_healthy() {
  [[ $(curl -s --max-time 2 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" 2>/dev/null) == ok ]]
}

node_ready() {
  [[ $(kubectl_ get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

start_kubelet() {
  if pid_of kubelet >/dev/null; then
    if [[ $KUBELET_CHANGED == 1 || $CONTAINERD_CHANGED == 1 ]]; then
      log "configuration changed; restarting the kubelet"
      stop_daemon_only kubelet
    elif wait_for kubelet 10 kubelet_healthy; then
      return 0
    else
      stop_daemon_only kubelet
    fi
  fi
  log "starting the kubelet ($NODE_NAME)"
  start_daemon kubelet "$K8S_BIN/kubelet" \
    --config "$KUBELET_DIR/config.yaml" \
    --kubeconfig "$KUBELET_DIR/kubeconfig" \
    --hostname-override "$NODE_NAME" \
    --root-dir "$KUBELET_DIR/root" \
    --v=1
  wait_for kubelet 60 kubelet_healthy || {
    tail -n 20 "$LOG_DIR/kubelet.log" >&2
    die "the kubelet did not become healthy (log: $LOG_DIR/kubelet.log)"
  }
}

# ---- images --------------------------------------------------------------------

# image_digest REF: the manifest digest containerd holds for REF, or nothing.
image_digest() {
  ctr_ images ls "name==$1" 2>/dev/null | awk 'NR > 1 { print $3 }'
}

ensure_pause_image() {
  "$HACK_DIR/images/build-pause" >&2
}

# ---- teardown --------------------------------------------------------------------

# Our containerd's shims (and, below them, every container process).
shim_pids() {
  local p cmd
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    cmd=$(tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline") || continue
    [[ $cmd == *containerd-shim* && $cmd == *"-address $CONTAINERD_SOCK "* ]] && alive "$p" && echo "$p"
  done
  return 0
}

# Mount points under the node's directories, deepest first.
node_mounts() {
  awk -v a="$KUBELET_DIR/" -v b="$CONTAINERD_DIR/" \
    'index($5, a) == 1 || index($5, b) == 1 || $5 == substr(a, 1, length(a) - 1) { print $5 }' \
    /proc/self/mountinfo | awk '{ print length($0), $0 }' | sort -rn | cut -d' ' -f2-
}
