#!/usr/bin/env bash
# Deployment tests against the real API server of the local stack (and, for the install
# test, the real node of hack/node): the Helm chart, the plain install bundle, RBAC and
# the "no sync drift" contract Argo CD relies on. (The Lua health checks and the static
# checks run under `cargo test` in this crate.)
#
#   hack/stack up && hack/node up && hack/node images && tests/deploy/run.sh
#
# Prints one line per check and a closing "N passed, N failed" line; exits non-zero if
# anything failed. A missing API server, node or image is a FAILURE under CI=true; outside
# CI only the checks that need the node are skipped, each saying so.
# Idempotent: every object it creates is named tributary-deploy-* (or is the release
# "tributary" in tributary-system) and is removed at the end, except the CRDs, which the
# chart keeps on purpose (and which the other test suites use too).
set -uo pipefail
# With pipefail, never end a pipe in `grep -q` (its early exit SIGPIPEs the writer).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHART=$ROOT/charts/tributary
HELM=$ROOT/hack/helm
CI=${CI:-false}
WORK=$(mktemp -d)

passed=0 failed=0 skipped=0
ok()   { passed=$((passed + 1)); printf 'ok   - %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL - %s: %s\n' "$1" "$2"; }
skip() { skipped=$((skipped + 1)); printf 'SKIP - %s: %s\n' "$1" "$2"; }
# check NAME FUNCTION: run it (output to a per-check file), pass if it exits 0.
check() {
  local name=$1; shift
  local out=$WORK/out.$((passed + failed + skipped))
  local start=$SECONDS
  if "$@" > "$out" 2>&1; then
    ok "$name ($((SECONDS - start)) s)"
    # TRIBUTARY_DEPLOY_VERBOSE=1 shows what each passing check saw (evidence for reviews).
    [[ ${TRIBUTARY_DEPLOY_VERBOSE:-} == 1 ]] && sed 's/^/       | /' "$out"
  else
    fail "$name" "$(tail -n 8 "$out" | tr '\n' ' ')"
  fi
}
finish() {
  echo "deploy: $passed passed, $failed failed, $skipped skipped"
  [[ $failed -eq 0 ]]
}

if ! eval "$("$ROOT/hack/stack" env)" || ! kubectl --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
  fail "the stack's API server answers" "run hack/stack up first"
  finish; exit 1
fi

k() { kubectl --request-timeout=30s "$@"; }
helm() { "$HELM" "$@"; }
expect() {  # expect ACTUAL EXPECTED [WHAT]
  [[ $1 == "$2" ]] || { echo "${3:-value}: expected '$2', got '$1'"; return 1; }
}
# wait_until SECONDS WHAT CMD...: poll CMD every second.
wait_until() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [[ $SECONDS -ge $deadline ]]; then echo "timed out after ${limit}s waiting for: $what"; return 1; fi
    sleep 1
  done
}

# Names. The main release is what `helm install tributary charts/tributary -n
# tributary-system` gives users (cluster-wide, owns the CRDs; no pods: replicaCount 0, so
# it never acts on other suites' namespaces). The e2e release watches one namespace.
REL=tributary;            REL_NS=tributary-system;            SA=tributary
E2E=tributary-e2e;        E2E_NS=tributary-deploy-e2e-system; E2E_SA=tributary-e2e
WATCHED=tributary-deploy-e2e                       # the e2e operator's only namespace
OTHER=tributary-deploy-other                        # a namespace it must not reach
SCOPED_WATCH=tributary-deploy-watched               # from ci/namespaced-values.yaml
DRY=tributary-deploy-dry                             # server dry-run target namespace
# Tag of the locally imported operator image (hack/node images imports :dev).
OPERATOR_TAG=${TRIBUTARY_DEPLOY_OPERATOR_TAG:-dev}
RUNNER_TAG=${TRIBUTARY_DEPLOY_RUNNER_TAG:-dev}

cleanup() {
  [[ -n ${OPERATOR_PID:-} ]] && kill "$OPERATOR_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# Start clean: an aborted run leaves its namespaces (with objects an earlier operator
# already reconciled, which would let the checks below pass on stale status), and a
# finished run deletes them without waiting (one still Terminating would swallow what
# this run creates). Delete them and wait, bounded, until they are gone.
for ns in "$DRY" "$SCOPED_WATCH" "$WATCHED" "$OTHER" "$E2E_NS"; do
  if k get namespace "$ns" >/dev/null 2>&1; then
    k delete namespace "$ns" --wait=false >/dev/null 2>&1
    k wait --for=delete namespace/"$ns" --timeout=180s >/dev/null 2>&1 \
      || echo "warning: namespace $ns is still terminating" >&2
  fi
done
# Namespaces the dry runs and installs need (Helm creates only the release namespace).
for ns in "$DRY" "$SCOPED_WATCH" "$WATCHED" "$OTHER"; do
  k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null
done

# ---- The chart on its own -------------------------------------------------------------
t_lint() {
  local f
  for f in "$CHART"/ci/*-values.yaml; do
    echo "== helm lint --strict -f ${f##*/}"
    helm lint --strict "$CHART" -f "$f" || return 1
  done
}

t_schema_rejects() {
  # A typo must fail the render, not be ignored silently.
  if helm template x "$CHART" --set replicaCoun=2 >/dev/null 2>"$WORK/typo"; then
    echo "a misspelt value (replicaCoun) rendered"; return 1
  fi
  grep -i "additional properties 'replicaCoun' not allowed" "$WORK/typo" >/dev/null || { cat "$WORK/typo"; return 1; }
  # Two acting replicas would race each other.
  if helm template x "$CHART" --set replicaCount=2 --set leaderElection.enabled=false >/dev/null 2>"$WORK/ha"; then
    echo "replicaCount=2 without leader election rendered"; return 1
  fi
  if helm template x "$CHART" --set image.pullPolicy=Sometimes >/dev/null 2>&1; then
    echo "an invalid pull policy rendered"; return 1
  fi
  # An OpenLineage URL the operator would refuse at startup fails the render already.
  if helm template x "$CHART" --set openlineage.url=marquez:5000 >/dev/null 2>&1; then
    echo "an OpenLineage URL without http(s):// rendered"; return 1
  fi
  if helm template x "$CHART" --set openlineage.apiKeySecretRef.name=ol >/dev/null 2>&1; then
    echo "an OpenLineage API key Secret without a key rendered"; return 1
  fi
}

# Every values variant, rendered and validated by the real API server (schemas, CEL,
# RBAC escalation checks: the server refuses a Role granting what its creator lacks).
t_server_dry_run() {
  local f
  for f in "$CHART"/ci/*-values.yaml; do
    [[ $f == */servicemonitor-values.yaml ]] && continue   # no ServiceMonitor CRD here
    echo "== ${f##*/}"
    helm template "$REL" "$CHART" --namespace "$DRY" -f "$f" > "$WORK/render.yaml" || return 1
    k apply --dry-run=server --server-side --field-manager=tributary-deploy-test \
      --force-conflicts -f "$WORK/render.yaml" || return 1
  done
}

t_servicemonitor_renders() {
  helm template "$REL" "$CHART" -f "$CHART/ci/servicemonitor-values.yaml" --show-only templates/servicemonitor.yaml > "$WORK/sm.yaml" || return 1
  grep -x 'kind: ServiceMonitor' "$WORK/sm.yaml" >/dev/null && grep -x '    - port: http-metrics' "$WORK/sm.yaml" >/dev/null \
    && grep 'release: kube-prometheus-stack' "$WORK/sm.yaml" >/dev/null
}

t_in_sync() { "$ROOT/tests/deploy/render.sh" --check; }

t_bundle_dry_run() {
  # The plain bundle and the kustomize base, as users apply them. The bundle's first object
  # is its Namespace, which a real apply creates before the rest; a dry run creates
  # nothing, so on a fresh API server the namespaced objects would be refused without it.
  k create namespace "$REL_NS" --dry-run=client -o yaml | k apply -f - >/dev/null || return 1
  k apply --dry-run=server --server-side --force-conflicts --field-manager=tributary-deploy-test \
    -f "$ROOT/manifests/install/install.yaml" || return 1
  k kustomize "$ROOT/manifests/install" > "$WORK/kustomized.yaml" || return 1
  k apply --dry-run=server --server-side --force-conflicts --field-manager=tributary-deploy-test \
    -f "$WORK/kustomized.yaml"
}

t_argocd_cm_dry_run() {
  # The argocd-cm snippet is a valid ConfigMap (Argo CD's namespace is not on the test server).
  sed "s/^  namespace: argocd$/  namespace: $DRY/" "$ROOT/manifests/argocd/argocd-cm.yaml" > "$WORK/cm.yaml"
  k apply --dry-run=server --server-side --field-manager=tributary-health -f "$WORK/cm.yaml"
}

check "helm lint --strict passes with every values file in ci/" t_lint
check "values.schema.json and the templates reject typos and racing replicas" t_schema_rejects
check "helm template of every values variant is accepted by the API server (dry run)" t_server_dry_run
check "the optional ServiceMonitor renders" t_servicemonitor_renders
check "install bundle, CRD copies and Argo CD snippets equal a fresh render" t_in_sync
check "the plain install bundle and its kustomize base are accepted by the API server" t_bundle_dry_run
check "the argocd-cm snippet is accepted by the API server" t_argocd_cm_dry_run

# ---- Installed: RBAC ------------------------------------------------------------------
# CRDs created before by kubectl or another test suite carry no Helm ownership; Helm adopts
# an object that has it (the documented way to bring existing objects under a release).
adopt_crds() {
  local crd
  for crd in pipelines.tributary.dev datasources.tributary.dev; do
    k get crd "$crd" >/dev/null 2>&1 || continue
    k annotate --overwrite crd "$crd" meta.helm.sh/release-name="$REL" meta.helm.sh/release-namespace="$REL_NS" >/dev/null || return 1
    k label --overwrite crd "$crd" app.kubernetes.io/managed-by=Helm >/dev/null || return 1
  done
}

t_install_main() {
  adopt_crds || return 1
  # replicaCount 0: RBAC, CRDs and Service for real, but no operator acting on every
  # namespace of a shared test server (the e2e release below runs one, scoped).
  helm upgrade --install "$REL" "$CHART" --namespace "$REL_NS" --create-namespace \
    --set replicaCount=0 --wait --timeout 2m || return 1
  k wait --for=condition=Established --timeout=60s crd/pipelines.tributary.dev crd/datasources.tributary.dev
}

t_install_e2e_release() {
  # crds.install=false: the main release owns them (one owner per cluster-wide object).
  helm upgrade --install "$E2E" "$CHART" --namespace "$E2E_NS" --create-namespace \
    -f "$CHART/ci/testbed-values.yaml" --set image.tag="$OPERATOR_TAG" --set runner.image.tag="$RUNNER_TAG" --set watchNamespace="$WATCHED" \
    --set crds.install=false --set replicaCount=0 --wait --timeout 2m
}

# can SA-SUBJECT VERB RESOURCE [NAMESPACE|--all-namespaces] [--subresource=...]: exits 0 iff allowed.
can() {
  local who=$1; shift
  [[ $(k auth can-i --as="$who" "$@" 2>/dev/null) == yes ]]
}
# allow WHO ARGS... / deny WHO ARGS...: record each verdict, fail if any is wrong.
verdicts=0
allow() { if can "$@"; then echo "allowed: ${*:2}"; else echo "WRONGLY DENIED: $*"; verdicts=1; fi; }
deny()  { if can "$@"; then echo "WRONGLY ALLOWED: $*"; verdicts=1; else echo "denied:  ${*:2}"; fi; }

# What the operator needs, for a subject and a namespace flag (-n NS or --all-namespaces).
operator_needs() {
  local who=$1; shift
  local v
  for v in list watch; do
    allow "$who" "$v" pipelines.tributary.dev "$@"
    allow "$who" "$v" datasources.tributary.dev "$@"
    allow "$who" "$v" jobs.batch "$@"
  done
  allow "$who" patch pipelines.tributary.dev --subresource=status "$@"
  allow "$who" patch datasources.tributary.dev --subresource=status "$@"
  allow "$who" update pipelines.tributary.dev --subresource=finalizers "$@"
  allow "$who" update datasources.tributary.dev --subresource=finalizers "$@"
  allow "$who" create jobs.batch "$@"
  allow "$who" delete jobs.batch "$@"
  allow "$who" list pods "$@"
  allow "$who" watch pods "$@"
  allow "$who" create events.events.k8s.io "$@"
}

# What it must never do, anywhere it acts.
operator_never() {
  local who=$1; shift
  local v
  for v in get list watch; do
    deny "$who" "$v" secrets "$@"
  done
  deny "$who" create secrets "$@"
  # It never writes what users declared (Argo CD's fields): no spec, no metadata.
  for v in create update patch delete; do
    deny "$who" "$v" pipelines.tributary.dev "$@"
    deny "$who" "$v" datasources.tributary.dev "$@"
  done
  deny "$who" update jobs.batch "$@"
  deny "$who" patch jobs.batch "$@"
  deny "$who" get pods/log "$@"
  deny "$who" create pods/exec "$@"
  deny "$who" create pods "$@"
  deny "$who" delete pods "$@"
  deny "$who" get configmaps "$@"
}

t_rbac_cluster_mode() {
  local who=system:serviceaccount:$REL_NS:$SA
  verdicts=0
  operator_needs "$who" --all-namespaces
  operator_needs "$who" -n "$OTHER"
  operator_never "$who" --all-namespaces
  operator_never "$who" -n "$OTHER"
  operator_never "$who" -n "$REL_NS"
  # Nothing cluster-scoped beyond its kinds: no CRDs, nodes, RBAC, namespaces.
  deny "$who" get customresourcedefinitions.apiextensions.k8s.io
  deny "$who" list nodes
  deny "$who" list namespaces
  deny "$who" create clusterrolebindings.rbac.authorization.k8s.io
  deny "$who" create rolebindings.rbac.authorization.k8s.io -n "$OTHER"
  deny "$who" '*' '*' --all-namespaces
  # Leader election: its own Lease in its own namespace, by name; creating the first one.
  allow "$who" get leases.coordination.k8s.io/"$REL" -n "$REL_NS"
  allow "$who" update leases.coordination.k8s.io/"$REL" -n "$REL_NS"
  allow "$who" create leases.coordination.k8s.io -n "$REL_NS"
  deny "$who" get leases.coordination.k8s.io/kube-scheduler -n kube-system
  deny "$who" update leases.coordination.k8s.io/someone-else -n "$REL_NS"
  deny "$who" delete leases.coordination.k8s.io/"$REL" -n "$REL_NS"
  deny "$who" create leases.coordination.k8s.io -n "$OTHER"
  return $verdicts
}

t_rbac_namespaced_mode() {
  local who=system:serviceaccount:$E2E_NS:$E2E_SA
  verdicts=0
  operator_needs "$who" -n "$WATCHED"
  operator_never "$who" -n "$WATCHED"
  # Nothing outside the watched namespace, and nothing cluster-wide.
  deny "$who" list pipelines.tributary.dev --all-namespaces
  deny "$who" list pipelines.tributary.dev -n "$OTHER"
  deny "$who" create jobs.batch -n "$OTHER"
  deny "$who" list pods -n "$OTHER"
  deny "$who" list secrets -n "$OTHER"
  allow "$who" update leases.coordination.k8s.io/"$E2E" -n "$E2E_NS"
  return $verdicts
}

t_runner_sa_has_no_rights() {
  local who=system:serviceaccount:$WATCHED:tributary-runner
  verdicts=0
  k -n "$WATCHED" get serviceaccount tributary-runner -o jsonpath='{.automountServiceAccountToken}' > "$WORK/automount" || return 1
  expect "$(cat "$WORK/automount")" false "runner automountServiceAccountToken" || return 1
  deny "$who" get secrets -n "$WATCHED"
  deny "$who" list pods -n "$WATCHED"
  deny "$who" get pipelines.tributary.dev -n "$WATCHED"
  deny "$who" create jobs.batch -n "$WATCHED"
  deny "$who" get configmaps -n "$WATCHED"
  # Its token, were one mounted, would grant only what every authenticated user has:
  # self-reviews and non-resource URLs such as /version and /readyz.
  k auth can-i --as="$who" --list -n "$WATCHED" > "$WORK/runner-rights" || return 1
  cat "$WORK/runner-rights"
  if awk 'NR > 1 && $1 !~ /^(selfsubject|\[)/' "$WORK/runner-rights" | grep . >/dev/null; then
    echo "the runner ServiceAccount has rights beyond self-review"; return 1
  fi
  return $verdicts
}

t_user_roles_aggregate() {
  # The built-in edit/view ClusterRoles pick up the chart's aggregated rules.
  k -n "$WATCHED" create rolebinding tributary-deploy-editor --clusterrole=edit --user=tributary-deploy-editor \
    --dry-run=client -o yaml | k apply -f - >/dev/null || return 1
  k -n "$WATCHED" create rolebinding tributary-deploy-viewer --clusterrole=view --user=tributary-deploy-viewer \
    --dry-run=client -o yaml | k apply -f - >/dev/null || return 1
  verdicts=0
  # Aggregation is asynchronous (the clusterrole-aggregation controller).
  wait_until 30 "edit aggregates tributary-edit" can tributary-deploy-editor create pipelines.tributary.dev -n "$WATCHED"
  allow tributary-deploy-editor create pipelines.tributary.dev -n "$WATCHED"
  allow tributary-deploy-editor patch datasources.tributary.dev -n "$WATCHED"
  deny tributary-deploy-editor patch pipelines.tributary.dev --subresource=status -n "$WATCHED"
  allow tributary-deploy-viewer list pipelines.tributary.dev -n "$WATCHED"
  deny tributary-deploy-viewer create pipelines.tributary.dev -n "$WATCHED"
  k -n "$WATCHED" delete rolebinding tributary-deploy-editor tributary-deploy-viewer >/dev/null
  return $verdicts
}

check "helm upgrade --install of the chart (cluster-wide, CRDs, no pods) into $REL_NS" t_install_main
check "helm upgrade --install of a single-namespace release with the test-bed values" t_install_e2e_release
check "RBAC, ClusterRole mode: the operator can do each thing it needs, never Secrets, never spec" t_rbac_cluster_mode
check "RBAC, Role mode: only the watched namespace, nothing cluster-wide" t_rbac_namespaced_mode
check "the runner ServiceAccount has no API rights and mounts no token" t_runner_sa_has_no_rights
check "namespace editors and viewers get Pipelines through the aggregated ClusterRoles" t_user_roles_aggregate

# ---- CRD upgrades through Helm --------------------------------------------------------
t_helm_upgrades_crds() {
  # A value that changes only the CRDs: after `helm upgrade` the live CRDs carry it,
  # which Helm's crds/ directory would never do.
  local mark=upgrade-$RANDOM
  helm upgrade "$REL" "$CHART" --namespace "$REL_NS" --reuse-values \
    --set-string crds.annotations.tributary\\.dev/deploy-test="$mark" --wait --timeout 2m || return 1
  expect "$(k get crd pipelines.tributary.dev -o jsonpath='{.metadata.annotations.tributary\.dev/deploy-test}')" "$mark" "CRD annotation after upgrade" || return 1
  expect "$(k get crd pipelines.tributary.dev -o jsonpath='{.metadata.annotations.helm\.sh/resource-policy}')" keep "keep policy" || return 1
  # The served schema is the chart's (the generated one): a field only it knows is accepted.
  k explain pipeline.spec.suspend --api-version=tributary.dev/v1alpha1 >/dev/null || return 1
  helm upgrade "$REL" "$CHART" --namespace "$REL_NS" --reuse-values --set crds.annotations=null --wait --timeout 2m >/dev/null
}
check "helm upgrade upgrades the CRDs (templates, not crds/) and keeps the keep policy" t_helm_upgrades_crds

# ---- Installed and running: the e2e release ---------------------------------------------
node_ready() {
  k get nodes -o jsonpath='{range .items[*]}{range .status.conditions[?(@.type=="Ready")]}{.status}{"\n"}{end}{end}' 2>/dev/null | grep -x True >/dev/null
}
image_on_node() {  # image_on_node NAME TAG: the test-bed images are imported, never pulled
  [[ -x $ROOT/hack/node ]] && "$ROOT/hack/node" crictl images 2>/dev/null | awk -v n="localhost/tributary/$1" -v t="$2" '$1 == n && $2 == t' | grep . >/dev/null
}
need_node() {  # need_node CHECK-NAME: 0 when the node and images are there
  local why=""
  # The Node object stays Ready for a while after its kubelet died: ask hack/node too.
  { node_ready && [[ -x $ROOT/hack/node ]] && "$ROOT/hack/node" status >/dev/null 2>&1; } || why="no Ready node (hack/node up)"
  [[ -z $why ]] && ! image_on_node operator "$OPERATOR_TAG" && why="image localhost/tributary/operator:$OPERATOR_TAG missing (hack/node images)"
  [[ -z $why ]] && ! image_on_node runner "$RUNNER_TAG" && why="image localhost/tributary/runner:$RUNNER_TAG missing (hack/node images)"
  [[ -z $why ]] && return 0
  if [[ $CI == true ]]; then fail "$1" "$why"; else skip "$1" "$why"; fi
  return 1
}

# The example, as Argo CD would apply it: server-side, its own field manager, into the
# e2e namespace (the only change: namespace retail -> $WATCHED).
example() {
  local f
  for f in "$ROOT"/manifests/examples/retail/{10-secrets,20-datasources,30-pipeline}.yaml; do
    echo "---"
    sed "s/namespace: retail\b/namespace: $WATCHED/" "$f"
  done
}
apply_example() {
  example > "$WORK/example.yaml"
  k apply --server-side --field-manager=argocd-controller -f "$WORK/example.yaml"
}

t_operator_ready() {
  helm upgrade "$E2E" "$CHART" --namespace "$E2E_NS" --reuse-values --set replicaCount=1 || return 1
  k -n "$E2E_NS" rollout status deployment/"$E2E" --timeout=300s || {
    k -n "$E2E_NS" describe pods -l app.kubernetes.io/instance="$E2E" | tail -30
    k -n "$E2E_NS" logs deployment/"$E2E" --tail=30
    return 1
  }
  k -n "$E2E_NS" get pods -l app.kubernetes.io/instance="$E2E" -o wide
  # The acting pod holds the Lease.
  local pod holder
  pod=$(k -n "$E2E_NS" get pods -l app.kubernetes.io/instance="$E2E" -o jsonpath='{.items[0].metadata.name}')
  wait_until 60 "the Lease names $pod" bash -c \
    "[[ \$(kubectl -n $E2E_NS get lease $E2E -o jsonpath='{.spec.holderIdentity}') == $pod ]]" || return 1
  holder=$(k -n "$E2E_NS" get lease "$E2E" -o jsonpath='{.spec.holderIdentity}')
  echo "lease holder: $holder"
}

t_host_network_rollout() {
  # A new pod template on the host network: the new pod needs the old one's ports on the
  # same node, so the chart stops the old pod first instead of surging (a surge pod would
  # stay Pending for ever on a one-node cluster). The new pod then takes the Lease.
  local old new
  old=$(k -n "$E2E_NS" get pods -l app.kubernetes.io/instance="$E2E" -o jsonpath='{.items[0].metadata.name}')
  helm upgrade "$E2E" "$CHART" --namespace "$E2E_NS" --reuse-values \
    --set-string podAnnotations.tributary\\.dev/rollout="$RANDOM$RANDOM" || return 1
  k -n "$E2E_NS" rollout status deployment/"$E2E" --timeout=180s || {
    k -n "$E2E_NS" get pods -o wide; k -n "$E2E_NS" describe pods | grep -A5 Events:
    return 1
  }
  wait_until 60 "one pod left" bash -c \
    "[[ \$(kubectl -n $E2E_NS get pods -l app.kubernetes.io/instance=$E2E -o name | wc -l) == 1 ]]" || return 1
  new=$(k -n "$E2E_NS" get pods -l app.kubernetes.io/instance="$E2E" -o jsonpath='{.items[0].metadata.name}')
  [[ $new != "$old" ]] || { echo "the pod was not replaced"; return 1; }
  wait_until 60 "the Lease names $new" bash -c \
    "[[ \$(kubectl -n $E2E_NS get lease $E2E -o jsonpath='{.spec.holderIdentity}') == $new ]]" || return 1
  echo "rolled $old -> $new"
}

# status.observedGeneration == metadata.generation of a resource.
observed() {
  local got
  got=$(k -n "$WATCHED" get "$1" -o jsonpath='{.metadata.generation} {.status.observedGeneration}')
  [[ -n ${got#* } && ${got% *} == "${got#* }" ]]
}

# The operator's log, wherever it runs.
operator_log() {
  if [[ -n ${OPERATOR_PID:-} ]]; then cat "$WORK/local-operator.log"; else k -n "$E2E_NS" logs deployment/"$E2E" --tail=-1; fi
}

# Without a node, the same operator binary runs here, out of cluster, as the e2e release's
# ServiceAccount (a token from the TokenRequest API): the chart's RBAC is then still the
# only thing it has, and reconciling (status, Jobs, Events, Lease) needs no running pod.
operator_bin() {
  if [[ -n ${TRIBUTARY_OPERATOR_BIN:-} ]]; then echo "$TRIBUTARY_OPERATOR_BIN"; return 0; fi
  # A no-op after `cargo test --workspace --all-targets` (make test), which built it.
  (cd "$ROOT" && cargo build -q -p tributary-operator --bin tributary-operator) >&2 || return 1
  echo "${CARGO_TARGET_DIR:-$ROOT/target}/debug/tributary-operator"
}
t_local_operator_ready() {
  local bin token
  bin=$(operator_bin) || return 1
  [[ -x $bin ]] || { echo "no operator binary at $bin"; return 1; }
  token=$(k -n "$E2E_NS" create token "$E2E_SA" --duration=1h) || return 1
  k config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' | base64 -d > "$WORK/ca.crt"
  cat > "$WORK/sa.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: stack, cluster: {server: "$(k config view --minify -o jsonpath='{.clusters[0].cluster.server}')", certificate-authority: "$WORK/ca.crt"}}]
users: [{name: operator, user: {token: "$token"}}]
contexts: [{name: operator, context: {cluster: stack, user: operator}}]
current-context: operator
KC
  # The same settings the chart's Deployment passes (testbed values, one namespace).
  KUBECONFIG=$WORK/sa.kubeconfig TRIBUTARY_WATCH_NAMESPACE=$WATCHED POD_NAMESPACE=$E2E_NS \
    POD_NAME=deploy-test-local TRIBUTARY_LEASE_NAME=$E2E TRIBUTARY_METRICS_ADDR=127.0.0.1:18091 \
    TRIBUTARY_LOG_FORMAT=text TRIBUTARY_HOST_NETWORK=true TRIBUTARY_RUNNER_IMAGE=localhost/tributary/runner:$RUNNER_TAG \
    TRIBUTARY_RUNNER_IMAGE_PULL_POLICY=Never RUST_LOG=info,tributary_operator=debug \
    "$bin" > "$WORK/local-operator.log" 2>&1 &
  OPERATOR_PID=$!
  wait_until 60 "the operator's /readyz" curl -sf http://127.0.0.1:18091/readyz || { tail -20 "$WORK/local-operator.log"; return 1; }
  wait_until 60 "the Lease names the local operator" bash -c \
    "[[ \$(kubectl -n $E2E_NS get lease $E2E -o jsonpath='{.spec.holderIdentity}') == deploy-test-local ]]" || { tail -20 "$WORK/local-operator.log"; return 1; }
  wait_until 60 "caches synced" curl -sf http://127.0.0.1:18091/readyz
}

t_reconciles_example() {
  apply_example || return 1
  wait_until 120 "the Pipeline observed" observed pipeline/retail-elt || return 1
  # Each DataSource gets a connection-check Job. With a node the check runs and settles
  # Ready to True or False; without one its pod stays Pending and Ready says Unknown.
  local settled='[[ $s == True || $s == False ]]'
  [[ -n ${OPERATOR_PID:-} ]] && settled='[[ -n $s ]]'
  wait_until 300 "every DataSource checked" bash -c \
    "for d in \$(kubectl -n $WATCHED get datasources.tributary.dev -o name); do
       s=\$(kubectl -n $WATCHED get \$d -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}')
       $settled || exit 1
     done" || { k -n "$WATCHED" get datasources.tributary.dev,jobs,pods -o wide; return 1; }
  k -n "$WATCHED" get pipelines.tributary.dev,datasources.tributary.dev,jobs -o wide
  # The Valid condition is the operator's verdict on the example.
  expect "$(k -n "$WATCHED" get pipelines.tributary.dev retail-elt -o jsonpath='{.status.conditions[?(@.type=="Valid")].status}')" True "Valid" || return 1
  # It created Jobs (task or check) and Events, i.e. used its create rights for real.
  [[ -n $(k -n "$WATCHED" get jobs -o name) ]] || { echo "no Jobs created"; return 1; }
  [[ -n $(k -n "$WATCHED" get events.events.k8s.io -o name) ]] || { echo "no Events published"; return 1; }
  # No permission errors anywhere in the operator's log.
  operator_log > "$WORK/operator.log"
  if grep -E 'is forbidden|Forbidden|code: 403|Unauthorized' "$WORK/operator.log"; then echo "the operator hit RBAC denials"; return 1; fi
}

# The Argo CD health checks on the live objects the real operator wrote: each verdict must
# agree with the phase / Ready condition it reads (the Lua runs in the same Lua 5.1 sandbox
# as the cargo tests, through tests/deploy's argocd-health binary).
t_argocd_health_live() {
  local bin
  (cd "$ROOT" && cargo build -q -p tributary-deploy-tests --bin argocd-health) || return 1
  bin=${CARGO_TARGET_DIR:-$ROOT/target}/debug/argocd-health
  k -n "$WATCHED" get pipelines.tributary.dev retail-elt -o json > "$WORK/p.json" || return 1
  local phase want got
  phase=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"]["phase"])' "$WORK/p.json")
  case $phase in Running|Pending) want=Progressing ;; Succeeded) want=Healthy ;; *) want=Degraded ;; esac
  got=$("$bin" "$ROOT/manifests/argocd/health/pipeline.lua" < "$WORK/p.json") || return 1
  echo "Pipeline (phase $phase): $got"
  expect "$(echo "$got" | awk '{print $2}')" "$want" "health of the $phase Pipeline" || return 1
  k -n "$WATCHED" get datasources.tributary.dev -o json > "$WORK/ds.json" || return 1
  "$bin" "$ROOT/manifests/argocd/health/datasource.lua" < "$WORK/ds.json" > "$WORK/ds.health" || return 1
  cat "$WORK/ds.health"
  local name ready
  while read -r name got _; do
    ready=$(k -n "$WATCHED" get datasources.tributary.dev "$name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
    case $ready in True) want=Healthy ;; False) want=Degraded ;; *) want=Progressing ;; esac
    expect "$got" "$want" "health of DataSource $name (Ready=$ready)" || return 1
  done < "$WORK/ds.health"
}

t_no_sync_drift() {
  # After the operator wrote status (and maybe created Jobs), applying the same files
  # again changes nothing: the operator never wrote spec or metadata, defaults come from
  # the schema (so they are in both the desired and the live object), status is a
  # subresource. `kubectl diff` exits 0 only when nothing would change.
  local gen_before gen_after
  gen_before=$(k -n "$WATCHED" get pipelines.tributary.dev retail-elt -o jsonpath='{.metadata.generation}')
  example > "$WORK/example.yaml"
  k diff --server-side --field-manager=argocd-controller -f "$WORK/example.yaml" || { echo "kubectl diff found drift"; return 1; }
  apply_example >/dev/null || return 1
  gen_after=$(k -n "$WATCHED" get pipelines.tributary.dev retail-elt -o jsonpath='{.metadata.generation}')
  expect "$gen_after" "$gen_before" "generation after re-apply" || return 1
  # Who owns what: the operator only status, through the status subresource.
  local kind
  for kind in pipelines datasources; do
    k -n "$WATCHED" get "$kind" -o json --show-managed-fields > "$WORK/$kind.json" || return 1
    python3 - "$WORK/$kind.json" <<'PY' || return 1
import json, sys
items = json.load(open(sys.argv[1]))["items"]
assert items, "no objects"
for o in items:
    name = o["metadata"]["name"]
    ops = [(m["manager"], m.get("subresource", ""), sorted(m.get("fieldsV1", {}))) for m in o["metadata"]["managedFields"]]
    operator = [x for x in ops if x[0] == "tributary-operator"]
    assert operator, f"{name}: the operator never wrote status: {ops}"
    for manager, sub, fields in operator:
        assert sub == "status" and fields == ["f:status"], f"{name}: the operator owns {fields} via '{sub}'"
    for manager, sub, fields in ops:
        if manager != "tributary-operator":
            assert "f:status" not in fields, f"{name}: {manager} owns status"
    print(f"{name}: generation {o['metadata']['generation']}, managers {[(m, s) for m, s, _ in ops]}")
PY
  done
}

if need_node "helm install: the operator Deployment becomes Ready and holds the Lease"; then
  check "helm install: the operator Deployment becomes Ready and holds the Lease" t_operator_ready
  check "helm upgrade with a new pod template rolls the host-network operator over (no stuck surge pod)" t_host_network_rollout
  where="the installed operator"
else
  check "without the node or its images: the operator binary, out of cluster with the release's ServiceAccount token, takes the Lease and syncs" t_local_operator_ready
  where="the operator (out of cluster, chart RBAC)"
fi
check "$where reconciles the retail example (status, Jobs, Events) without RBAC denials" t_reconciles_example
check "the Argo CD health checks agree with the live status the operator wrote" t_argocd_health_live
check "no sync drift: re-applying the example server-side changes nothing; the operator owns only status" t_no_sync_drift
if [[ -n ${OPERATOR_PID:-} ]]; then kill "$OPERATOR_PID" 2>/dev/null; wait "$OPERATOR_PID" 2>/dev/null; OPERATOR_PID=""; fi

# ---- Uninstall keeps the CRDs -----------------------------------------------------------
t_uninstall() {
  helm uninstall "$E2E" --namespace "$E2E_NS" --wait --timeout 2m || return 1
  k delete namespace "$WATCHED" "$OTHER" "$SCOPED_WATCH" "$DRY" "$E2E_NS" --wait=false >/dev/null
  helm uninstall "$REL" --namespace "$REL_NS" --wait --timeout 2m || return 1
  # helm.sh/resource-policy: keep -> the CRDs (and every Pipeline in the cluster) survive.
  k get crd pipelines.tributary.dev datasources.tributary.dev || return 1
  ! k get clusterrole tributary >/dev/null 2>&1 || { echo "the ClusterRole survived uninstall"; return 1; }
  # A new install adopts the kept CRDs (their Helm ownership metadata is still there).
  helm upgrade --install "$REL" "$CHART" --namespace "$REL_NS" --set replicaCount=0 --wait --timeout 2m >/dev/null || return 1
  helm uninstall "$REL" --namespace "$REL_NS" --wait --timeout 2m >/dev/null
}
check "helm uninstall removes the operator and keeps the CRDs; a reinstall adopts them" t_uninstall

finish
