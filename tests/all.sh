#!/usr/bin/env bash
# Every test suite against the local stack, in the order their prerequisites need, each
# one run even when an earlier one failed (so one CI run shows every failure), then a
# table of suites, outcomes and durations. Exit status non-zero if any suite failed.
#
#   make test          (lint, hack/stack up, then this script; what CI runs)
#   tests/all.sh       (stack already up)
#
# Under CI=true every suite treats a missing server, node or image as a failure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
eval "$("$ROOT/hack/stack" env)"

names=() outcomes=() durations=()
failed=0

# suite NAME COMMAND...: run it with its output streaming, record the outcome.
suite() {
  local name=$1; shift
  local start=$SECONDS status
  printf '\n==== %s: %s\n' "$name" "$*"
  "$@"
  status=$?
  names+=("$name") durations+=($((SECONDS - start)))
  if [[ $status -eq 0 ]]; then outcomes+=(passed); else outcomes+=("FAILED ($status)"); failed=1; fi
}

suite "cargo tests (unit, property, integration)" cargo test --workspace --all-targets --no-fail-fast
suite "stack checks" "$ROOT/tests/stack/run.sh"
# The runner, operator and embedder release binaries and their local images: the node,
# end-to-end and deployment suites run them in real pods.
suite "release build and images" "$ROOT/hack/demo" prepare
suite "node checks (real kubelet and containerd)" "$ROOT/tests/node/run.sh"
suite "end to end (the retail example through kubectl apply)" env TRIBUTARY_E2E_NO_BUILD=1 "$ROOT/tests/e2e/run.sh"
suite "deployment (Helm chart, install bundle, RBAC, Argo CD)" "$ROOT/tests/deploy/run.sh"

printf '\n%-58s %-12s %s\n' SUITE OUTCOME SECONDS
for i in "${!names[@]}"; do
  printf '%-58s %-12s %s\n' "${names[$i]}" "${outcomes[$i]}" "${durations[$i]}"
done
exit $failed
