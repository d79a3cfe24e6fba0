#!/usr/bin/env bash
# Tests of the local node (hack/node): real pods on a real kubelet, with
# images built here. A node that is not up is a FAILURE, never a skip. Prints
# one line per check and a closing "N passed, N failed" line; exits non-zero
# if anything failed. The last checks run `hack/node down` and verify that
# nothing is left behind, then bring the node back up.
#
#   hack/stack up && hack/node up && tests/node/run.sh
#
# Images: localhost/tributary/toolbox:test (busybox, built here) for the
# generic checks; localhost/tributary/runner:dev from the newest runner
# binary found ($TRIBUTARY_RUNNER_BIN, else $CARGO_TARGET_DIR or target/,
# release then debug). No runner binary is a failure, not a skip.
set -uo pipefail
# With pipefail, never end a pipe in `grep -q` (SIGPIPE); use >/dev/null.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
eval "$("$ROOT/hack/stack" env)"
HACK_DIR=$ROOT/hack
# shellcheck source=hack/lib/common.sh
source "$HACK_DIR/lib/common.sh"
# shellcheck source=hack/lib/proc.sh
source "$HACK_DIR/lib/proc.sh"
# shellcheck source=hack/lib/certs.sh
source "$HACK_DIR/lib/certs.sh"
# shellcheck source=hack/lib/node.sh
source "$HACK_DIR/lib/node.sh"

RUN_ID=$(date +%s)-$$
NS=node-test-$RUN_ID
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1' EXIT
TOOLBOX=localhost/tributary/toolbox:test

passed=0 failed=0
ok()   { passed=$((passed + 1)); printf 'ok   - %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL - %s: %s\n' "$1" "$2"; }
check() {
  local name=$1; shift
  local out=$WORK/out.$((passed + failed))
  if "$@" > "$out" 2>&1; then ok "$name"; else fail "$name" "$(tail -n 8 "$out" | tr '\n' ' ')"; fi
}
expect() {  # expect ACTUAL EXPECTED [WHAT]
  [[ $1 == "$2" ]] || { echo "${3:-value}: expected '$2', got '$1'"; return 1; }
}
k() { kubectl --request-timeout=20s "$@"; }

# wait_pod_done NAME [TIMEOUT]: until the pod is Succeeded or Failed.
wait_pod_done() {
  local phase="" i
  for ((i = 0; i < ${2:-120} * 5; i++)); do
    phase=$(k -n "$NS" get pod "$1" -o jsonpath='{.status.phase}{" "}{.status.conditions[?(@.type=="PodScheduled")].reason}{" "}{.status.containerStatuses[0].state.waiting.reason}' 2>/dev/null)
    case $phase in
      Succeeded*|Failed*) echo "${phase%% *}"; return 0 ;;
      # Hopeless states fail at once instead of waiting for the timeout.
      *Unschedulable*|*ErrImagePull*|*ImagePullBackOff*|*CreateContainerConfigError*|*InvalidImageName*)
        echo "pod $1: $phase" >&2; k -n "$NS" describe pod "$1" | tail -n 4 >&2; return 1 ;;
    esac
    sleep 0.2
  done
  echo "pod $1 still '$phase' after ${2:-120} s" >&2
  k -n "$NS" describe pod "$1" | tail -n 15 >&2
  return 1
}
# terminated_message POD: the termination message of the pod's first container.
terminated_message() {
  k -n "$NS" get pod "$1" -o jsonpath='{.status.containerStatuses[0].state.terminated.message}'
}
# run_pod NAME < SPEC: create a pod from the YAML of its spec (indented two
# spaces) on stdin, wait until it is done, print its phase.
run_pod() {
  local name=$1
  { printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n' "$name"; cat; } \
    | k -n "$NS" apply -f - >/dev/null || return 1
  wait_pod_done "$name"
}

# ---- setup: images ------------------------------------------------------------

build_toolbox() {
  # busybox (static, Debian's busybox-static) as a tiny shell image for probes.
  if [[ ! -x /bin/busybox ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null || return 1
  fi
  local dir=$WORK/toolbox
  mkdir -p "$dir/bin" "$dir/tmp" "$dir/etc"
  chmod 1777 "$dir/tmp"
  cp /bin/busybox "$dir/bin/busybox"
  local a
  for a in sh cat echo id wget sleep touch test ls env; do ln -sf busybox "$dir/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/tmp:/bin/sh\n' > "$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' > "$dir/etc/group"
  "$ROOT/hack/images/build" --tag test --user 65532:65532 --entrypoint /bin/sh toolbox "$dir"
}

runner_binary() {
  local t c
  [[ -n ${TRIBUTARY_RUNNER_BIN:-} ]] && { echo "$TRIBUTARY_RUNNER_BIN"; return 0; }
  for t in "${CARGO_TARGET_DIR:-}" "$ROOT/target" "$TRIBUTARY_CACHE/cargo-target"; do
    for c in release debug; do
      [[ -n $t && -x $t/$c/tributary-runner ]] && { echo "$t/$c/tributary-runner"; return 0; }
    done
  done
  return 1
}

build_runner() {
  local bin
  bin=$(runner_binary) || { echo "no tributary-runner binary: cargo build --release -p tributary-runner (or set TRIBUTARY_RUNNER_BIN)"; return 1; }
  echo "runner binary: $bin"
  "$ROOT/hack/images/build" runner "$bin"
}

# ---- checks ----------------------------------------------------------------------

t_node_ready() {
  expect "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" True "Ready" || return 1
  expect "$(k get node "$NODE_NAME" -o jsonpath='{.status.addresses[?(@.type=="InternalIP")].address}')" 127.0.0.1 "InternalIP" || return 1
  k get node "$NODE_NAME" -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}' | grep '^containerd://' >/dev/null
}

t_namespace() {
  k create namespace "$NS" >/dev/null || return 1
  local i
  for ((i = 0; i < 300; i++)); do k -n "$NS" get sa default >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "no default ServiceAccount in $NS"; return 1
}

t_job_completes() {
  cat <<YAML | k -n "$NS" apply -f - >/dev/null || return 1
apiVersion: batch/v1
kind: Job
metadata: {name: hello}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: hello
        image: $TOOLBOX
        command: ["/bin/sh", "-c", "echo hello from \$(id -u) on \$(cat /etc/hostname)"]
YAML
  local pod="" i
  for ((i = 0; i < 600; i++)); do # 120 s: the Job controller may be busy with other tests' Jobs
    pod=$(k -n "$NS" get pods -l batch.kubernetes.io/job-name=hello -o jsonpath='{.items[0].metadata.name}' 2>/dev/null)
    [[ -n $pod ]] && break
    sleep 0.2
  done
  [[ -n $pod ]] || { echo "the Job controller created no pod"; return 1; }
  wait_pod_done "$pod" >/dev/null || return 1
  k -n "$NS" wait --for=condition=Complete job/hello --timeout=60s || { k -n "$NS" describe job hello | tail; return 1; }
  # kubectl logs goes API server -> kubelet (127.0.0.1:$KUBELET_PORT): proves that path too.
  k -n "$NS" logs "$pod" | grep '^hello from 65532 on ' >/dev/null || { k -n "$NS" logs "$pod"; return 1; }
  # Pod start latency: creation -> container start, reported by the API.
  local created started
  created=$(k -n "$NS" get pod "$pod" -o jsonpath='{.metadata.creationTimestamp}')
  started=$(k -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].state.terminated.startedAt}')
  echo "pod start latency: $(( $(date -d "$started" +%s) - $(date -d "$created" +%s) )) s (creation -> container start, 1 s resolution)" \
    | tee "$WORK/latency"
}

t_termination_message() {
  run_pod term <<YAML >/dev/null || return 1
  restartPolicy: Never
  containers:
  - name: c
    image: $TOOLBOX
    command: ["/bin/sh", "-c"]
    args:
    - printf '{"rows":42,"run":"$RUN_ID"}' > /dev/termination-log
YAML
  expect "$(terminated_message term)" "{\"rows\":42,\"run\":\"$RUN_ID\"}" "terminated.message"
}

t_termination_message_custom_path() {
  # A custom path, with FallbackToLogsOnError as the operator renders it.
  run_pod termpath <<YAML >/dev/null || return 1
  restartPolicy: Never
  containers:
  - name: c
    image: $TOOLBOX
    terminationMessagePath: /tmp/result.json
    terminationMessagePolicy: FallbackToLogsOnError
    command: ["/bin/sh", "-c"]
    args: ["echo ok-$RUN_ID > /tmp/result.json"]
YAML
  expect "$(terminated_message termpath)" "ok-$RUN_ID" "terminated.message"
}

t_secret_env() {
  k -n "$NS" create secret generic creds --from-literal=password="s3cr3t-$RUN_ID" >/dev/null || return 1
  run_pod secretenv <<'YAML' >/dev/null || return 1
  restartPolicy: Never
  containers:
  - name: c
    image: localhost/tributary/toolbox:test
    env:
    - name: DB_PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    command: ["/bin/sh", "-c"]
    args: ['printf %s "$DB_PASSWORD" > /dev/termination-log']
YAML
  expect "$(terminated_message secretenv)" "s3cr3t-$RUN_ID" "DB_PASSWORD in the container"
}

t_restricted() {
  # The security context and the emptyDir /tmp the operator puts on runner
  # pods (operator/src/jobs.rs; the "restricted" Pod Security Standard). The container reports who it is, whether / is
  # writable, its seccomp mode (2 = filter) and effective capabilities.
  local phase
  phase=$(run_pod restricted <<'YAML'
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: c
    image: localhost/tributary/toolbox:test
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
    volumeMounts: [{name: tmp, mountPath: /tmp}]
    command: ["/bin/sh", "-c"]
    args:
    - |
      if touch /probe 2>/dev/null; then ro=no; else ro=yes; fi
      touch /tmp/scratch && tmp=rw || tmp=ro
      seccomp=$(grep '^Seccomp:' /proc/self/status | tr -d ' \t')
      caps=$(grep '^CapEff:' /proc/self/status | tr -d ' \t')
      echo "uid=$(id -u) gid=$(id -g) root-ro=$ro tmp=$tmp $seccomp $caps" > /dev/termination-log
  volumes: [{name: tmp, emptyDir: {}}]
YAML
  ) || return 1
  expect "$phase" Succeeded "phase" || return 1
  expect "$(terminated_message restricted)" "uid=65532 gid=65532 root-ro=yes tmp=rw Seccomp:2 CapEff:0000000000000000" "inside the container"
}

t_host_network_minio() {
  run_pod hostnet <<YAML >/dev/null || return 1
  restartPolicy: Never
  hostNetwork: true
  containers:
  - name: c
    image: $TOOLBOX
    command: ["/bin/sh", "-c"]
    args:
    - wget -S -q -O /dev/null http://127.0.0.1:$MINIO_PORT/minio/health/ready 2>&1 | grep -i 'server:' > /dev/termination-log
YAML
  expect "$(k -n "$NS" get pod hostnet -o jsonpath='{.status.phase}')" Succeeded "phase" || { terminated_message hostnet; return 1; }
  terminated_message hostnet | grep -i minio >/dev/null || { echo "no MinIO Server header: $(terminated_message hostnet)"; return 1; }
}

t_pod_network() {
  # A non-host-network pod gets an address on the bridge, from POD_CIDR; the
  # kubelet writes it into the pod's /etc/hosts.
  run_pod podnet <<'YAML' >/dev/null || return 1
  restartPolicy: Never
  containers:
  - name: c
    image: localhost/tributary/toolbox:test
    command: ["/bin/sh", "-c"]
    args: ['grep podnet /etc/hosts | cut -f1 > /dev/termination-log']
YAML
  local ip
  ip=$(k -n "$NS" get pod podnet -o jsonpath='{.status.podIP}')
  [[ $ip == "${POD_CIDR%.*.*}".* ]] || { echo "pod IP '$ip' is not in $POD_CIDR"; return 1; }
  expect "$(terminated_message podnet | tr -d '[:space:]')" "$ip" "the pod's own address"
}

t_runner_image() {
  # The runner contract end to end, as the operator renders it
  # (operator/src/jobs.rs): input in TRIBUTARY_INPUT, credentials from
  # secretKeyRef, restricted security context, emptyDir /tmp, hostNetwork to
  # reach MinIO on loopback; the result lands in state.terminated.message.
  k -n "$NS" create secret generic minio-creds --from-literal=accessKeyId="$AWS_ACCESS_KEY_ID" \
    --from-literal=secretAccessKey="$AWS_SECRET_ACCESS_KEY" >/dev/null || return 1
  local input
  input=$(printf '{"action":"checkConnection","name":"lake","namespace":"%s","spec":{"s3":{"endpoint":"http://127.0.0.1:%s","region":"us-east-1","bucket":"%s","pathStyle":true,"credentialsSecretRef":{"name":"minio-creds"}}}}' \
    "$NS" "$MINIO_PORT" "$MINIO_BUCKET")
  local phase
  phase=$(run_pod runner <<YAML
  restartPolicy: Never
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  automountServiceAccountToken: false
  enableServiceLinks: false
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: runner
    image: $RUNNER_IMAGE
    terminationMessagePolicy: FallbackToLogsOnError
    env:
    - {name: TRIBUTARY_INPUT, value: '$input'}
    - name: TRIBUTARY_DS_LAKE_ACCESS_KEY_ID
      valueFrom: {secretKeyRef: {name: minio-creds, key: accessKeyId}}
    - name: TRIBUTARY_DS_LAKE_SECRET_ACCESS_KEY
      valueFrom: {secretKeyRef: {name: minio-creds, key: secretAccessKey}}
    securityContext: {runAsUser: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
    volumeMounts: [{name: tmp, mountPath: /tmp}]
  volumes: [{name: tmp, emptyDir: {}}]
YAML
  ) || return 1
  local msg; msg=$(terminated_message runner)
  expect "$phase" Succeeded "phase" || { echo "message: $msg"; k -n "$NS" logs runner | tail -5; return 1; }
  if ! echo "$msg" | grep '"outcome":"succeeded"' >/dev/null || ! echo "$msg" | grep "s3://$MINIO_BUCKET" >/dev/null; then
    echo "unexpected result: $msg"; return 1
  fi
}

t_no_pulls() {
  # An image that was not built here fails at once: no registry is ever asked.
  cat <<YAML | k -n "$NS" apply -f - >/dev/null || return 1
apiVersion: v1
kind: Pod
metadata: {name: nopull}
spec:
  restartPolicy: Never
  containers: [{name: c, image: "example.invalid/nothing:1"}]
YAML
  local i reason msg
  for ((i = 0; i < 600; i++)); do
    reason=$(k -n "$NS" get pod nopull -o jsonpath='{.status.containerStatuses[0].state.waiting.reason}' 2>/dev/null)
    [[ $reason == ErrImagePull || $reason == ImagePullBackOff ]] && break
    sleep 0.2
  done
  expect "$reason" ErrImagePull "waiting reason" 2>/dev/null || [[ $reason == ImagePullBackOff ]] || { echo "reason: '$reason'"; return 1; }
  # The kubelet puts the runtime's pull error in the waiting state's message.
  msg=$(k -n "$NS" get pod nopull -o jsonpath='{.status.containerStatuses[0].state.waiting.message}')
  [[ $reason == ImagePullBackOff ]] && msg+=$(k -n "$NS" get events --field-selector involvedObject.name=nopull,reason=Failed -o jsonpath='{.items[*].message}')
  echo "$msg" | grep '127.0.0.1:9' >/dev/null || { echo "pull did not go to the loopback blackhole: $msg"; return 1; }
}

# ---- down leaves nothing behind, up comes back --------------------------------------

t_down_leaves_nothing() {
  # A pod still running when the node goes down must not survive it.
  cat <<YAML | k -n "$NS" apply -f - >/dev/null || return 1
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: c, image: $TOOLBOX, command: ["/bin/sleep", "3600"]}]
YAML
  k -n "$NS" wait --for=condition=Ready pod/sleeper --timeout=60s >/dev/null || return 1
  local t0=$SECONDS
  "$ROOT/hack/node" down || return 1
  echo "down took $((SECONDS - t0)) s"
  local p cmd exe left=""
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
    exe=$(basename "$(readlink "$p/exe" 2>/dev/null)")
    case $exe in
      kubelet|containerd|containerd-shim*|runc|pause|busybox|sleep)
        [[ $exe == sleep && $cmd != *3600* ]] && continue
        left+="${p#/proc/} $exe ${cmd:0:100}"$'\n' ;;
    esac
  done
  [[ -z $left ]] || { echo "left running:"; echo "$left"; return 1; }
  local mounts
  mounts=$(grep -E " ($KUBELET_DIR|$CONTAINERD_DIR)[/ ]" /proc/self/mountinfo)
  [[ -z $mounts ]] || { echo "left mounted:"; echo "$mounts"; return 1; }
  ! ip link show "$CNI_BRIDGE" >/dev/null 2>&1 || { echo "bridge $CNI_BRIDGE is still there"; return 1; }
}

t_up_again() {
  local t0=$SECONDS
  "$ROOT/hack/node" up || return 1
  echo "warm up took $((SECONDS - t0)) s"
  t_node_ready
}

# ---- run ---------------------------------------------------------------------------

check "node: hack/node status says containerd, kubelet and the Node are up" "$ROOT/hack/node" status
check "node: the Node 127.0.0.1 is Ready with containerd as its runtime" t_node_ready
check "images: a busybox toolbox image builds locally and imports into containerd" build_toolbox
check "images: the runner image builds from the tributary-runner binary" build_runner
check "pods: a test namespace gets its default ServiceAccount" t_namespace
check "pods: a Job whose pod runs a locally built image completes, and kubectl logs shows its output" t_job_completes
[[ -s $WORK/latency ]] && sed 's/^/     /' "$WORK/latency"
check "pods: /dev/termination-log content appears in state.terminated.message" t_termination_message
check "pods: a custom terminationMessagePath is honoured" t_termination_message_custom_path
check "pods: an env var from secretKeyRef reaches the container" t_secret_env
check "pods: runAsNonRoot, uid 65532, read-only root, no capabilities and RuntimeDefault seccomp hold" t_restricted
check "pods: a hostNetwork pod reaches MinIO on 127.0.0.1:$MINIO_PORT" t_host_network_minio
check "pods: a pod on the bridge gets an address from $POD_CIDR" t_pod_network
check "pods: the runner image checks MinIO from a hostNetwork pod with secretKeyRef credentials; its result is the termination message" t_runner_image
check "pods: an image that is not local fails at once, without asking any registry" t_no_pulls
check "node: hack/node down leaves no kubelet, containerd, shim or container process, no mount, no bridge" t_down_leaves_nothing
check "node: hack/node up brings the Node back to Ready" t_up_again

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
