#!/usr/bin/env bash
# End-to-end tests: the retail example applied with kubectl, run by the in-cluster
# machinery for real (operator, Jobs, runner and embedder pods on the local node,
# MinIO, FerretDB, PostgreSQL, FTP, SFTP, HTTP).
#
#   1. the retail Pipeline succeeds and the warehouse tables have the star-schema semantics;
#   2. wrong passwords in two Secrets (FTP, warehouse: permanent failures, Failed at once) and
#      an unreachable server (retryable: retried, then Failed); dependents Skipped; clear
#      messages without any secret value;
#   3. after fixing the Secrets and the DataSource, a tributary.dev/retry annotation
#      completes the run, re-running only the failed and skipped tasks under the failed
#      run's identity (the re-run load reads the object the kept export wrote).
#
# Each scenario has its own namespace, S3 bucket, PostgreSQL database and operator process
# (watching only that namespace), and reads its own small collection (5,000 documents,
# retail.e2e_transactions), so it never clashes with `make demo` or other suites.
# Prints one line per check and "e2e: N passed, N failed". Under CI=true a missing API
# server or node is a failure; otherwise the suite is skipped with a note.
#
#   tests/e2e/run.sh            (after `hack/stack up`; builds and imports what it needs)
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
eval "$("$ROOT/hack/stack" env)"
STACK=$TRIBUTARY_STACK_DIR
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PY=${TRIBUTARY_VENV:-$HOME/.cache/tributary/venv}/bin/python
RUN_TIMEOUT=${TRIBUTARY_E2E_RUN_TIMEOUT:-600}
SUFFIX=$(date +%H%M%S)$RANDOM
WORK=$(mktemp -d)
OPERATOR_PIDS=()
NAMESPACES=()
DATABASES=()
BUCKETS=()

cleanup() {
  local pid ns db bucket
  for pid in "${OPERATOR_PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  if [[ ${TRIBUTARY_E2E_KEEP:-} != 1 ]]; then
    for ns in "${NAMESPACES[@]}"; do kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1; done
    # Bounded: DROP DATABASE waits for every backend of the server to absorb a barrier, and
    # one stuck in a client's COPY (another suite's, say) would hold the suite forever.
    for db in "${DATABASES[@]}"; do
      timeout 60 runuser -u postgres -- psql -h "$STACK/postgres/run" -p "$PGPORT" -U postgres -d postgres -qAtX \
        -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || echo "note: could not drop database $db"
    done
    for bucket in "${BUCKETS[@]}"; do aws s3 rb "s3://$bucket" --force >/dev/null 2>&1; done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

passed=0 failed=0
ok()   { passed=$((passed + 1)); printf 'ok   - %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL - %s: %s\n' "$1" "$2"; }
check() {  # check NAME CMD...: pass if CMD exits 0 (its output goes to a file)
  local name=$1; shift
  local out=$WORK/out.$((passed + failed))
  if "$@" > "$out" 2>&1; then ok "$name"; else fail "$name" "$(tail -n 8 "$out" | tr '\n' ' ')"; fi
}
finish() {
  echo
  echo "e2e: $passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit $?
}
expect() {  # expect ACTUAL EXPECTED WHAT
  [[ $1 == "$2" ]] || { echo "$3: expected '$2', got '$1'"; return 1; }
}

k() { kubectl --request-timeout=20s "$@"; }
# PostgreSQL as its superuser over the stack's socket: only to create and drop the
# per-scenario databases (the demo account may not create databases).
pg_super() {
  runuser -u postgres -- psql -h "$STACK/postgres/run" -p "$PGPORT" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"
}
q() { local db=$1; shift; psql -d "$db" -qAtX -v ON_ERROR_STOP=1 -c "$*"; }

# ---- preconditions ------------------------------------------------------------------------

missing() {
  if [[ ${CI:-} == true ]]; then
    fail "preconditions" "$1 (a missing server or node is a failure under CI=true)"
  else
    echo "skipping the end-to-end tests: $1"
  fi
  finish
}
k get --raw /readyz >/dev/null 2>&1 || missing "the stack's API server does not answer (hack/stack up)"
if ! "$ROOT/hack/node" up >"$WORK/node.log" 2>&1; then
  tail -n 5 "$WORK/node.log"
  missing "the node did not come up (hack/node up)"
fi
echo "== building and importing the images (cached when unchanged)"
build_flag=(); [[ ${TRIBUTARY_E2E_NO_BUILD:-} == 1 ]] && build_flag=(--no-build)
if ! "$ROOT/hack/demo" "${build_flag[@]}" prepare >"$WORK/prepare.log" 2>&1; then
  tail -n 20 "$WORK/prepare.log"
  fail "hack/demo prepare" "stack, node, build, images or CRDs failed"
  finish
fi
"$PY" "$ROOT/hack/lib/seed.py" mongo --uri "$MONGODB_URI" --collection e2e_transactions --size small \
  >"$WORK/seed.log" 2>&1 || { cat "$WORK/seed.log"; fail "seed" "retail.e2e_transactions"; finish; }
OPERATOR=$TARGET/release/tributary-operator

# ---- a scenario's own world ------------------------------------------------------------------

# scenario NAME: creates namespace, bucket, database; renders the example into
# $WORK/NAME/ pointed at them; starts an operator watching the namespace.
# Sets NS, DB, BUCKET, DIR.
scenario() {
  local name=$1
  NS=e2e-$name-$SUFFIX DB=e2e_${name//-/_}_$SUFFIX BUCKET=e2e-$name-$SUFFIX DIR=$WORK/$name
  NAMESPACES+=("$NS") DATABASES+=("$DB") BUCKETS+=("$BUCKET")
  pg_super -c "CREATE DATABASE $DB OWNER $PGUSER" || return 1
  aws s3 mb "s3://$BUCKET" >/dev/null || return 1
  mkdir -p "$DIR"
  local key
  key=$(awk '{print $1" "$2}' "$STACK/sftp/ssh_host_ed25519_key.pub")
  for f in "$ROOT"/manifests/examples/retail/*.yaml; do
    sed -e "s/namespace: retail\b/namespace: $NS/; s/^  name: retail$/  name: $NS/" \
      -e "s/bucket: raw$/bucket: $BUCKET/; s|s3://raw/|s3://$BUCKET/|g" \
      -e "s/database: warehouse$/database: $DB/" \
      -e "s/collection: customer_transactions\b/collection: e2e_transactions/" \
      -e "s|^\( *\)insecureSkipHostKeyVerification: true|\1hostKey: \"$key\"|" \
      "$f" > "$DIR/${f##*/}"
  done
  grep -q "hostKey:" "$DIR/20-datasources.yaml" || { echo "host key not pinned"; return 1; }
  ! grep -rn "namespace: retail\b\|bucket: raw\|database: warehouse\|s3://raw/" "$DIR" || return 1
  k apply -f "$DIR/00-namespace.yaml" >/dev/null || return 1
  "$OPERATOR" --namespace "$NS" --host-network \
    --runner-image localhost/tributary/runner:dev --runner-image-pull-policy Never \
    --leader-elect=false --metrics-addr 127.0.0.1:0 --log-format text \
    --job-ttl-seconds 3600 >"$WORK/operator-$name.log" 2>&1 &
  OPERATOR_PIDS+=($!)
  sleep 1
  kill -0 "${OPERATOR_PIDS[-1]}" || { tail -n 20 "$WORK/operator-$name.log"; return 1; }
}

pipeline_json() { k -n "$1" get pipelines.tributary.dev retail-elt -o json; }
# task_field NS TASK PYTHON-EXPR: evaluate an expression on the task's status entry `t`.
task_field() {
  pipeline_json "$1" | python3 -c "
import json, sys
run = json.load(sys.stdin)['status']['lastRun']
t = next(t for t in run['tasks'] if t['name'] == '$2')
print($3)"
}
run_field() {
  pipeline_json "$1" | python3 -c "
import json, sys
run = json.load(sys.stdin)['status']['lastRun']
print($2)"
}
# wait_phase NS PREVIOUS_RUN PHASE: the run after PREVIOUS_RUN ends in PHASE.
wait_phase() {
  local ns=$1 prev=$2 want=$3
  "$ROOT/hack/demo" wait "$ns" retail-elt "$prev" "$RUN_TIMEOUT"
  expect "$(run_field "$ns" "run['phase']")" "$want" "run phase"
}

# =============================================================================================
echo "== 1. the retail pipeline through kubectl apply (small data)"
check "scenario: namespace, bucket, database, operator" scenario retail
RETAIL_NS=$NS RETAIL_DB=$DB RETAIL_BUCKET=$BUCKET

t_apply_and_succeed() {
  k apply -f "$DIR/" || return 1
  wait_phase "$RETAIL_NS" "" Succeeded
}
check "kubectl apply: run g1 of retail-elt succeeds (every task)" t_apply_and_succeed

t_all_tasks_succeeded() {
  run_field "$RETAIL_NS" "'\n'.join(t['name'] + ' ' + t['phase'] for t in run['tasks'])" | tee /dev/stderr \
    | awk '$2 != "Succeeded" {bad=1} END {exit bad}'
  expect "$(run_field "$RETAIL_NS" "len(run['tasks'])")" 11 "tasks"
}
check "status: 11/11 tasks Succeeded" t_all_tasks_succeeded

t_datasources_ready() {
  local n
  n=$(k -n "$RETAIL_NS" get datasources.tributary.dev -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
print(sum(1 for s in items for c in s.get("status", {}).get("conditions", []) if c["type"] == "Ready" and c["status"] == "True"))')
  expect "$n" 6 "Ready DataSources"
}
check "all 6 DataSources are Ready (connection checks ran as pods)" t_datasources_ready

t_staging_rows() {
  expect "$(q "$RETAIL_DB" "SELECT count(*) FROM staging.transactions")" 5000 "staging rows"
  expect "$(task_field "$RETAIL_NS" load-transactions "t['lineage']['rows']")" 5000 "rows in status"
}
check "the raw export (5,000 documents) is loaded into staging.transactions" t_staging_rows

t_no_customerless_rows() {
  local missing_ids kept
  missing_ids=$(q "$RETAIL_DB" "SELECT count(*) FROM staging.transactions WHERE customer_id IS NULL OR customer_id = 'NaN'")
  [[ $missing_ids -gt 500 ]] || { echo "expected about a quarter of rows without customer id, got $missing_ids"; return 1; }
  # An invoice whose rows all lack a customer id must not reach the fact table.
  kept=$(q "$RETAIL_DB" "SELECT count(*) FROM fact_transactions WHERE invoice_no IN (
      SELECT invoice_no FROM staging.transactions GROUP BY invoice_no
      HAVING bool_and(customer_id IS NULL OR customer_id = 'NaN'))")
  expect "$kept" 0 "facts of customer-less invoices"
  expect "$(q "$RETAIL_DB" "SELECT count(*) FROM fact_transactions WHERE customer_id IS NULL")" 0 "null customers"
  # Total quantity: exactly the de-duplicated rows with a customer id (missing quantity = 1).
  expect "$(q "$RETAIL_DB" "SELECT sum(quantity) FROM fact_transactions")" \
    "$(q "$RETAIL_DB" "SELECT sum(coalesce(quantity, 1)) FROM (SELECT DISTINCT invoice_no, stock_code, description,
        quantity, invoice_date, unit_price, customer_id, country FROM staging.transactions
        WHERE customer_id IS NOT NULL AND customer_id <> 'NaN') d")" "total quantity"
}
check "rows without a customer id are dropped before anything else" t_no_customerless_rows

t_customers() {
  expect "$(q "$RETAIL_DB" "SELECT count(*) FROM dim_customers WHERE id !~ '^[0-9]+$'")" 0 "ids with decimals"
  expect "$(q "$RETAIL_DB" "SELECT count(*) FROM dim_customers")" \
    "$(q "$RETAIL_DB" "SELECT count(DISTINCT customer_id) FROM staging.transactions WHERE customer_id <> 'NaN'")" "customers"
}
check "dim_customers: one row per customer id, as text without decimals" t_customers

t_duplicates_collapsed() {
  local dup inv item raw fact
  # An exact duplicate in the raw data (every business column equal, different _id)...
  dup=$(q "$RETAIL_DB" "SELECT invoice_no || '|' || stock_code FROM staging.transactions
      WHERE customer_id IS NOT NULL AND quantity IS NOT NULL
      GROUP BY invoice_no, stock_code, description, quantity, invoice_date, unit_price, customer_id, country
      HAVING count(*) > 1 ORDER BY 1 LIMIT 1")
  [[ -n $dup ]] || { echo "the seed has no exact duplicate rows"; return 1; }
  inv=${dup%%|*} item=${dup#*|}
  raw=$(q "$RETAIL_DB" "SELECT sum(quantity) FROM staging.transactions WHERE invoice_no = '$inv' AND stock_code = '$item'")
  # ...counts once in the fact table.
  fact=$(q "$RETAIL_DB" "SELECT sum(f.quantity) FROM fact_transactions f JOIN dim_items i ON i.id = f.item_id
      WHERE f.invoice_no = '$inv' AND i.stock_code = '$item'")
  expect "$fact" "$(q "$RETAIL_DB" "SELECT sum(coalesce(quantity, 1)) FROM (SELECT DISTINCT invoice_no, stock_code,
      description, quantity, invoice_date, unit_price, customer_id, country FROM staging.transactions
      WHERE invoice_no = '$inv' AND stock_code = '$item') d")" "quantity of $inv/$item (raw sum $raw)"
  [[ $fact -lt $raw ]] || { echo "duplicate not collapsed: fact $fact, raw $raw"; return 1; }
  echo "invoice $inv item $item: raw sum $raw, fact $fact"
}
check "exact duplicate rows are collapsed (fact quantity < raw sum for a duplicated row)" t_duplicates_collapsed

t_item_versions() {
  local code n bad
  code=$(q "$RETAIL_DB" "SELECT stock_code FROM dim_items GROUP BY stock_code
      HAVING count(DISTINCT unit_price) > 1 ORDER BY count(*) DESC, stock_code LIMIT 1")
  [[ -n $code ]] || { echo "no stock code with a changing price"; return 1; }
  n=$(q "$RETAIL_DB" "SELECT count(*) FROM dim_items WHERE stock_code = '$code'")
  [[ $n -ge 2 ]] || { echo "$code has $n versions"; return 1; }
  q "$RETAIL_DB" "SELECT stock_code, unit_price, valid_from, valid_to FROM dim_items WHERE stock_code = '$code' ORDER BY valid_from"
  # Contiguous for every stock code: each version ends one second before the next starts;
  # the latest ends at 2099-12-31 00:00:00 minus one second.
  bad=$(q "$RETAIL_DB" "SELECT count(*) FROM (SELECT valid_to, lead(valid_from) OVER w AS next_from
      FROM dim_items WINDOW w AS (PARTITION BY stock_code ORDER BY valid_from, description, unit_price)) v
      WHERE valid_to <> coalesce(next_from, timestamp '2099-12-31 00:00:00') - interval '1 second'")
  expect "$bad" 0 "versions whose valid_to is not the next valid_from minus 1 s"
  expect "$(q "$RETAIL_DB" "SELECT count(*) FROM dim_items WHERE valid_to < valid_from AND valid_to <> valid_from - interval '1 second'")" 0 "inverted intervals"
  expect "$(q "$RETAIL_DB" "SELECT count(*) FROM dim_items WHERE id <> md5(stock_code || '|' || coalesce(description, '') || '|' || unit_price::text)")" 0 "ids not md5(stock_code|description|unit_price)"
  expect "$(q "$RETAIL_DB" "SELECT max(valid_to)::text FROM dim_items")" "2099-12-30 23:59:59" "open-ended valid_to"
}
check "dim_items: a stock code with changing price has contiguous versions (valid_to = next valid_from - 1 s)" t_item_versions

t_missing_description_filled() {
  # Rows without a description take the stock code's last known one: no version without a
  # description remains for a stock code that has a description anywhere.
  local undescribed
  undescribed=$(q "$RETAIL_DB" "SELECT count(*) FROM staging.transactions WHERE description IS NULL AND customer_id IS NOT NULL")
  echo "raw rows with a customer but no description: $undescribed"
  expect "$(q "$RETAIL_DB" "SELECT count(*) FROM dim_items i WHERE description IS NULL
      AND EXISTS (SELECT 1 FROM staging.transactions s WHERE s.stock_code = i.stock_code AND s.description IS NOT NULL
                  AND s.customer_id IS NOT NULL)")" 0 "versions left without a known description"
}
check "a missing description takes the stock code's last known description" t_missing_description_filled

t_fact_keys() {
  expect "$(q "$RETAIL_DB" "SELECT count(*) - count(DISTINCT (invoice_no, item_id)) FROM fact_transactions")" 0 "duplicate fact keys"
  expect "$(q "$RETAIL_DB" "SELECT string_agg(contype::text, '' ORDER BY contype) FROM pg_constraint WHERE conrelid = 'fact_transactions'::regclass")" ffp "constraints (2 foreign keys, 1 primary key)"
  expect "$(q "$RETAIL_DB" "SELECT count(*) FROM fact_transactions f LEFT JOIN dim_items i ON i.id = f.item_id WHERE i.id IS NULL")" 0 "facts without item"
  expect "$(q "$RETAIL_DB" "SELECT count(*) FROM fact_transactions f LEFT JOIN dim_customers c ON c.id = f.customer_id WHERE c.id IS NULL")" 0 "facts without customer"
}
check "fact_transactions: primary key (invoice_no, item_id) unique, both foreign keys valid" t_fact_keys

t_checks_passed() {
  local t
  for t in check-customers check-items check-facts; do
    task_field "$RETAIL_NS" "$t" "t['lineage'].get('checks')" | tee /dev/stderr | grep -E '^([0-9]+)/\1 passed$' >/dev/null \
      || { echo "$t: not every check passed"; return 1; }
  done
}
check "quality checks on all three tables passed" t_checks_passed

t_lineage() {
  local out
  out=$(task_field "$RETAIL_NS" transactions-to-lake "[o['namespace'] + '/' + o['name'] for o in t['lineage']['outputs']]")
  [[ $out == *"s3://$RETAIL_BUCKET/transactions/"*"/g1.jsonl.gz"* ]] || { echo "export outputs: $out"; return 1; }
  out=$(task_field "$RETAIL_NS" transactions-to-lake "[i['namespace'] + '/' + i['name'] for i in t['lineage']['inputs']]")
  [[ $out == *"mongodb://127.0.0.1:27117/retail.e2e_transactions"* ]] || { echo "export inputs: $out"; return 1; }
  out=$(task_field "$RETAIL_NS" load-transactions "[o['namespace'] + '/' + o['name'] for o in t['lineage']['outputs']]")
  [[ $out == *"postgres://127.0.0.1:15432/$RETAIL_DB.staging.transactions"* ]] || { echo "load outputs: $out"; return 1; }
  out=$(task_field "$RETAIL_NS" docs-from-sftp "[i['namespace'] + i['name'] for i in t['lineage']['inputs']]")
  [[ $out == *"sftp://127.0.0.1:2222/procedures/"*".pdf"* ]] || { echo "sftp inputs: $out"; return 1; }
  # The lake DataSource records who wrote and read it.
  k -n "$RETAIL_NS" get datasources.tributary.dev lake -o json | python3 -c '
import json, sys
entries = json.load(sys.stdin)["status"]["lineage"]
tasks = {e["task"] for e in entries}
assert {"transactions-to-lake", "load-transactions"} <= tasks, tasks'
}
check "lineage: OpenLineage names from Mongo to the lake to PostgreSQL; DataSource lineage" t_lineage

t_embeddings() {
  local key
  key=$(task_field "$RETAIL_NS" embed-docs "t['lineage']['outputs'][0]['name']") || return 1
  [[ $key == embeddings/*/embeddings.jsonl ]] || { echo "embed-docs output: $key"; return 1; }
  expect "$(task_field "$RETAIL_NS" embed-docs "len(t['lineage']['inputs'])")" 9 "PDFs read (3 per file server)"
  aws s3 cp "s3://$RETAIL_BUCKET/$key" "$WORK/embeddings.jsonl" >/dev/null || return 1
  python3 - "$WORK/embeddings.jsonl" <<'PY'
import json, math, sys
docs = [json.loads(line) for line in open(sys.argv[1])]
assert len(docs) == 9, len(docs)
for d in docs:
    assert d["dims"] == 256 and len(d["embedding"]) == 256, d["key"]
    assert abs(math.sqrt(sum(x * x for x in d["embedding"])) - 1) < 1e-3, d["key"]
    assert d["pages"] >= 1 and d["words"] > 50 and d["title"], d
# The same document copied from FTP, SFTP and HTTP: identical bytes, identical vectors.
by_name = {}
for d in docs:
    by_name.setdefault(d["key"].rsplit("/", 1)[1], []).append(d)
assert len(by_name) == 3, by_name.keys()
for name, copies in by_name.items():
    assert len({c["sha256"] for c in copies}) == 1 and len({tuple(c["embedding"]) for c in copies}) == 1, name
print({n: c[0]["title"] for n, c in by_name.items()})
PY
}
check "embed-docs (custom container): 9 PDFs embedded into embeddings/<date>/embeddings.jsonl" t_embeddings

t_second_run_idempotent() {
  local digest_sql="SELECT md5(string_agg(d, ',' ORDER BY d)) FROM (
      SELECT md5(string_agg(f::text, ',' ORDER BY f::text)) AS d FROM fact_transactions f
      UNION ALL SELECT md5(string_agg(i::text, ',' ORDER BY i::text)) FROM dim_items i
      UNION ALL SELECT md5(string_agg(c::text, ',' ORDER BY c::text)) FROM dim_customers c) x"
  local before after prev
  before=$(q "$RETAIL_DB" "$digest_sql")
  prev=$(run_field "$RETAIL_NS" "run['id']")
  k -n "$RETAIL_NS" annotate --overwrite pipeline retail-elt "tributary.dev/run=again-$SUFFIX" >/dev/null || return 1
  wait_phase "$RETAIL_NS" "$prev" Succeeded || return 1
  expect "$(run_field "$RETAIL_NS" "run['trigger']")" Manual "trigger"
  after=$(q "$RETAIL_DB" "$digest_sql")
  expect "$after" "$before" "star schema digest after a second run"
}
check "a second run (tributary.dev/run annotation) gives identical tables" t_second_run_idempotent

# =============================================================================================
echo "== 2. a wrong password in a Secret and an unreachable server: Failed, dependents Skipped"
check "scenario: namespace, bucket, database, operator" scenario bad-password
BAD_NS=$NS BAD_DB=$DB
WRONG=e2e-wrong-$RANDOM$RANDOM   # a value that must never show up anywhere

t_wrong_password_fails() {
  sed -i -e "s/password: tributary-ftp}/password: $WRONG}/" \
    -e "s/{username: tributary, password: tributary}/{username: tributary, password: $WRONG-pg}/" "$DIR/10-secrets.yaml"
  [[ $(grep -c "$WRONG" "$DIR/10-secrets.yaml") == 2 ]] || { echo "could not set the wrong passwords"; return 1; }
  # And the HTTP file server moved away: connection refused, which another attempt may fix.
  sed -i "s|baseUrl: http://127.0.0.1:18080/|baseUrl: http://127.0.0.1:1/|" "$DIR/20-datasources.yaml"
  k apply -f "$DIR/" || return 1
  wait_phase "$BAD_NS" "" Failed
}
check "kubectl apply with wrong FTP and warehouse passwords and an unreachable HTTP server: the run fails" t_wrong_password_fails

t_wrong_password_task() {
  local t
  for t in docs-from-ftp customers-to-lake load-transactions; do
    expect "$(task_field "$BAD_NS" $t "t['phase']")" Failed "$t phase" || return 1
    # The runner reports a refused login as permanent (no attempt can succeed until the
    # Secret changes), so the operator does not retry it.
    expect "$(task_field "$BAD_NS" $t "t['attempts']")" 1 "$t attempts" || return 1
    task_field "$BAD_NS" $t "t['message']" | tee /dev/stderr | grep -Ei "530|login|authenticat|28P01" >/dev/null \
      || { echo "$t: the message does not name the cause"; return 1; }
  done
  # The DataSource's connection check says so too.
  k -n "$BAD_NS" get datasources.tributary.dev warehouse -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' \
    | grep -x False >/dev/null || { echo "warehouse DataSource is not Ready=False"; return 1; }
}
check "wrong passwords: FTP and load tasks Failed at once with messages naming the refused login" t_wrong_password_task

t_unreachable_retried() {
  expect "$(task_field "$BAD_NS" docs-from-http "t['phase']")" Failed "phase" || return 1
  # retries: 2 in the Pipeline's defaults: three attempts, 10 s then 20 s apart.
  expect "$(task_field "$BAD_NS" docs-from-http "t['attempts']")" 3 "attempts" || return 1
  task_field "$BAD_NS" docs-from-http "t['message']" | tee /dev/stderr | grep -Ei "refused|connect" >/dev/null \
    || { echo "the message does not name the cause"; return 1; }
  k -n "$BAD_NS" get jobs -l tributary.dev/task=docs-from-http -o name | sort | tee /dev/stderr | wc -l | grep -x 3 >/dev/null \
    || { echo "expected one Job per attempt"; return 1; }
}
check "unreachable server: docs-from-http retried (3 attempts, a Job each), then Failed naming the cause" t_unreachable_retried

t_dependents_skipped() {
  expect "$(task_field "$BAD_NS" embed-docs "t['phase']")" Skipped "embed-docs phase" || return 1
  task_field "$BAD_NS" embed-docs "t.get('message', '')" | tee /dev/stderr | grep -E "docs-from-(ftp|http)" >/dev/null \
    || { echo "the skip message does not name the failed dependency"; return 1; }
  local t
  for t in build-star check-customers check-items check-facts; do
    expect "$(task_field "$BAD_NS" $t "t['phase']")" Skipped "$t phase" || return 1
  done
  # Tasks that depend on none of them ran to the end.
  for t in docs-from-sftp transactions-to-lake; do
    expect "$(task_field "$BAD_NS" $t "t['phase']")" Succeeded "$t phase" || return 1
  done
}
check "dependents (embed-docs, build-star, the checks) Skipped; independent tasks Succeeded" t_dependents_skipped

t_no_secret_anywhere() {
  local where
  for where in "pipeline retail-elt -o yaml" "datasources -o yaml" "events" "jobs -o yaml"; do
    # shellcheck disable=SC2086 # word splitting intended
    if k -n "$BAD_NS" get $where | grep -e "$WRONG" -e tributary-ftp >/dev/null; then
      echo "a secret value appears in: kubectl get $where"; return 1
    fi
  done
  if grep -e "$WRONG" -e tributary-ftp "$WORK/operator-bad-password.log" >/dev/null; then
    echo "a secret value appears in the operator's log"; return 1
  fi
}
check "no secret value in status, Events, Jobs or the operator's log" t_no_secret_anywhere

t_events() {
  k -n "$BAD_NS" get events.events.k8s.io -o json | python3 -c '
import json, sys
reasons = [e["reason"] for e in json.load(sys.stdin)["items"]]
assert reasons.count("TaskRetrying") >= 2 and "TaskFailed" in reasons and "RunFailed" in reasons, reasons'
}
check "Events: TaskRetrying, TaskFailed, RunFailed" t_events

# =============================================================================================
echo "== 3. fix the Secrets and the DataSource, then tributary.dev/retry"
t_retry_completes() {
  local prev
  prev=$(run_field "$BAD_NS" "run['id']")
  sed -i -e "s/password: $WRONG}/password: tributary-ftp}/" -e "s/password: $WRONG-pg}/password: tributary}/" "$DIR/10-secrets.yaml"
  sed -i "s|baseUrl: http://127.0.0.1:1/|baseUrl: http://127.0.0.1:18080/|" "$DIR/20-datasources.yaml"
  k apply -f "$DIR/10-secrets.yaml" -f "$DIR/20-datasources.yaml" || return 1
  k -n "$BAD_NS" annotate --overwrite pipeline retail-elt "tributary.dev/retry=fixed-$SUFFIX" >/dev/null || return 1
  wait_phase "$BAD_NS" "$prev" Succeeded || return 1
  expect "$(run_field "$BAD_NS" "run['trigger']")" Retry "trigger"
}
check "after fixing the Secrets and the DataSource, a retry annotation completes the run" t_retry_completes

t_only_failed_rerun() {
  local retry t job
  retry=$(run_field "$BAD_NS" "run['id']")
  # Re-run in the retry: their Jobs carry the retry's run id.
  for t in docs-from-ftp customers-to-lake docs-from-http load-transactions embed-docs build-star \
    check-customers check-items check-facts; do
    job=$(task_field "$BAD_NS" $t "t['job']")
    [[ $job == *"-$retry-"* ]] || { echo "$t was not re-run in $retry (job $job)"; return 1; }
  done
  # Kept from the failed run: their Jobs are the first run's (g1).
  for t in docs-from-sftp transactions-to-lake; do
    job=$(task_field "$BAD_NS" $t "t['job']")
    [[ $job == *"-g1-"* ]] || { echo "$t was re-run (job $job)"; return 1; }
  done
  expect "$(k -n "$BAD_NS" get jobs -l tributary.dev/run="$retry" -o name | wc -l)" 9 "Jobs of the retry run"
  # Templates resolved as in the failed run: the re-run load read the kept export's object
  # (transactions/<date>/g1.jsonl.gz), not one named after the retry.
  task_field "$BAD_NS" load-transactions "[i['name'] for i in t['lineage']['inputs']]" | tee /dev/stderr \
    | grep "/g1.jsonl.gz" >/dev/null || { echo "the re-run load did not read g1's export"; return 1; }
  expect "$(q "$BAD_DB" "SELECT count(*) FROM staging.transactions")" 5000 "staging rows after the retry"
}
check "the retry re-ran only the 9 failed and skipped tasks under g1's identity, keeping the 2 successes" t_only_failed_rerun

finish
