#!/usr/bin/env bash
# Runner benchmarks against baselines measured in the same run, on the local stack:
#   1. export retail documents MongoDB (FerretDB) -> S3 (MinIO), vs a plain driver cursor drain;
#      peak RSS at N and at 4N documents;
#   2. load the exported JSONL.gz -> PostgreSQL, vs `psql \copy` of the equivalent CSV on disk;
#   3. copy a 2 GiB file FTP -> S3, vs `curl ftp://… | aws s3 cp - s3://…`.
# Medians of BENCH_RUNS runs (default 3); peak RSS from /usr/bin/time -v.
# Needs the stack up (`./hack/stack up`). Writes a Markdown summary to BENCH_OUT (default
# target/runner-bench/summary.md).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
RUNS=${BENCH_RUNS:-3}
COPY_MIB=${BENCH_COPY_MIB:-2048}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/runner-dev}
OUT_DIR=${BENCH_DIR:-$ROOT/target/runner-bench}
SUMMARY=${BENCH_OUT:-$OUT_DIR/summary.md}
mkdir -p "$OUT_DIR"
eval "$(./hack/stack env)"
PY=${TRIBUTARY_VENV:-$HOME/.cache/tributary/venv}/bin/python

[[ -x /usr/bin/time ]] || { echo "installing GNU time"; apt-get install -y -qq time >/dev/null; }
command -v bc >/dev/null || apt-get install -y -qq bc >/dev/null
command -v aws >/dev/null || { echo "installing the AWS CLI (baseline uploader)"; pip install -q awscli; }

echo "== building (release)"
cargo build -q --release -p tributary-runner --bin tributary-runner --example mongo_drain
RUNNER=$CARGO_TARGET_DIR/release/tributary-runner
DRAIN=$CARGO_TARGET_DIR/release/examples/mongo_drain

echo "== seeding bench collections (idempotent)"
"$PY" hack/lib/seed.py mongo --uri "$MONGODB_URI" --collection bench_transactions --size full
"$PY" hack/lib/seed.py mongo --uri "$MONGODB_URI" --collection bench_transactions_x4 --size 2167636

# Credentials as a runner pod gets them: one variable per Secret key (see the contract).
FTP_USER=$(sed -E 's#^ftp://([^:]+):.*#\1#' <<<"$TRIBUTARY_FTP_URL")
FTP_PASS=$(sed -E 's#^ftp://[^:]+:([^@]+)@.*#\1#' <<<"$TRIBUTARY_FTP_URL")
FTP_PORT=$(sed -E 's#.*:([0-9]+)/?$#\1#' <<<"$TRIBUTARY_FTP_URL")
export TRIBUTARY_DS_LAKE_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID TRIBUTARY_DS_LAKE_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY
export TRIBUTARY_DS_WAREHOUSE_USERNAME=$PGUSER TRIBUTARY_DS_WAREHOUSE_PASSWORD=$PGPASSWORD
export TRIBUTARY_DS_FTP_USERNAME=$FTP_USER TRIBUTARY_DS_FTP_PASSWORD=$FTP_PASS
export TRIBUTARY_TERMINATION_LOG=$OUT_DIR/termination-log RUST_LOG=warn

SOURCES=$(cat <<JSON
{"lake": {"s3": {"endpoint": "$AWS_ENDPOINT_URL", "region": "$AWS_REGION", "bucket": "raw", "pathStyle": true,
                 "credentialsSecretRef": {"name": "minio"}}},
 "mongo": {"mongodb": {"uri": "$MONGODB_URI", "database": "retail"}},
 "warehouse": {"postgres": {"host": "$PGHOST", "port": $PGPORT, "database": "$PGDATABASE", "sslMode": "disable",
                            "credentialsSecretRef": {"name": "pg"}}},
 "ftp": {"ftp": {"host": "127.0.0.1", "port": $FTP_PORT, "credentialsSecretRef": {"name": "ftp"}}}}
JSON
)

input() { # RUN_ID TASK_JSON -> runner input
  cat <<JSON
{"action": "task", "pipeline": "bench", "namespace": "bench", "runId": "$1", "attempt": 1,
 "logicalTime": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "task": $2, "dataSources": $SOURCES}
JSON
}

RESULTS=$OUT_DIR/results.txt
: > "$RESULTS"
# measure NAME CMD...: wall seconds and peak RSS (KiB) of CMD, appended to RESULTS.
measure() {
  local name=$1; shift
  if ! /usr/bin/time -v -o "$OUT_DIR/time.txt" "$@" > "$OUT_DIR/stdout.txt" 2> "$OUT_DIR/stderr.txt"; then
    echo "FAILED: $name"; tail -5 "$OUT_DIR/stderr.txt"; tail -3 "$OUT_DIR/stdout.txt"; exit 1
  fi
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$OUT_DIR/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT_DIR/time.txt")
  echo "$name $wall $rss" >> "$RESULTS"
  printf '  %-22s %8.2f s %8.1f MiB\n' "$name" "$wall" "$(echo "$rss / 1024" | bc -l)"
}

runner_task() { # NAME RUN_ID TASK_JSON
  local name=$1 run=$2 task=$3
  input "$run" "$task" > "$OUT_DIR/input.json"
  measure "$name" "$RUNNER" --input "$OUT_DIR/input.json"
}

COLUMNS='[{"name":"source_id","type":"text","source":"_id"},{"name":"invoice_no","type":"text","source":"InvoiceNo"},
 {"name":"stock_code","type":"text","source":"StockCode"},{"name":"description","type":"text","source":"Description"},
 {"name":"quantity","type":"bigint","source":"Quantity"},{"name":"invoice_date","type":"text","source":"InvoiceDate"},
 {"name":"unit_price","type":"numeric","source":"UnitPrice"},{"name":"customer_id","type":"double precision","source":"CustomerID"},
 {"name":"country","type":"text","source":"Country"}]'

echo "== 1. export MongoDB -> S3 ($RUNS runs)"
for i in $(seq "$RUNS"); do
  measure drain "$DRAIN" "$MONGODB_URI" retail bench_transactions
  runner_task export "b$i" '{"name": "export", "export": {"from": {"dataSource": "mongo", "collection": "bench_transactions"},
    "to": {"dataSource": "lake", "key": "bench/export/b'$i'/transactions.jsonl.gz"}}}'
  [[ $i == 1 ]] && runner_task export_x4 "x$i" '{"name": "export", "export": {"from": {"dataSource": "mongo", "collection": "bench_transactions_x4"},
    "to": {"dataSource": "lake", "key": "bench/export/x'$i'/transactions.jsonl.gz"}}}'
done

echo "== 2. load JSONL.gz -> PostgreSQL ($RUNS runs)"
psql -q -c "CREATE SCHEMA IF NOT EXISTS bench"
for i in $(seq "$RUNS"); do
  runner_task load "l$i" '{"name": "load", "load": {"from": {"dataSource": "lake", "key": "bench/export/b1/transactions.jsonl.gz"},
    "to": {"dataSource": "warehouse", "table": "bench.transactions"}, "mode": "Replace", "columns": '"$COLUMNS"'}}'
  if [[ $i == 1 ]]; then
    # The equivalent CSV, on local disk, from what the runner loaded.
    psql -q -c "\\copy bench.transactions TO '$OUT_DIR/transactions.csv' CSV"
  fi
  psql -q -c "DROP TABLE IF EXISTS bench.transactions_csv; CREATE TABLE bench.transactions_csv (LIKE bench.transactions)"
  measure psql_copy psql -q -c "\\copy bench.transactions_csv FROM '$OUT_DIR/transactions.csv' CSV"
done
rows=$(psql -qtA -c "SELECT count(*) FROM bench.transactions")
csv_rows=$(psql -qtA -c "SELECT count(*) FROM bench.transactions_csv")
echo "  rows loaded: runner $rows, psql $csv_rows"

echo "== 3. copy ${COPY_MIB} MiB FTP -> S3 ($RUNS runs)"
BIG=$TRIBUTARY_STACK_DIR/files/ftp/inbox/bench-big.bin
if [[ ! -f $BIG || $(stat -c %s "$BIG") != $((COPY_MIB * 1048576)) ]]; then
  head -c "$((COPY_MIB * 1048576))" /dev/urandom > "$BIG.tmp" && mv "$BIG.tmp" "$BIG"
  chmod 644 "$BIG"
fi
for i in $(seq "$RUNS"); do
  measure curl_aws bash -c "curl -sS --fail '$TRIBUTARY_FTP_URL/inbox/bench-big.bin' | aws --endpoint-url '$AWS_ENDPOINT_URL' s3 cp - s3://raw/bench/copy-baseline/$i/bench-big.bin"
  runner_task copy "c$i" '{"name": "copy", "copy": {"from": {"dataSource": "ftp", "path": "/inbox", "glob": "bench-big.bin"},
    "to": {"dataSource": "lake", "prefix": "bench/copy/c'$i'/"}, "skipUnchanged": "Never"}}'
  aws --endpoint-url "$AWS_ENDPOINT_URL" s3 rm --quiet --recursive s3://raw/bench/copy-baseline/$i/ >/dev/null || true
  aws --endpoint-url "$AWS_ENDPOINT_URL" s3 rm --quiet --recursive "s3://raw/bench/copy/c$i/" >/dev/null || true
done

median() { awk -v n="$1" -v f="$2" '$1 == n {print $f}' "$RESULTS" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
maxof() { awk -v n="$1" -v f="$2" '$1 == n {print $f}' "$RESULTS" | sort -g | tail -1; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
mib() { echo "scale=1; $1 / 1024" | bc -l; }

d=$(median drain 2); e=$(median export 2); ex4=$(median export_x4 2)
l=$(median load 2); p=$(median psql_copy 2); c=$(median curl_aws 2); r=$(median copy 2)
docs=541909
{
  echo "| benchmark | runner (median) | baseline (median) | ratio | target | runner peak RSS |"
  echo "|---|---|---|---|---|---|"
  echo "| export $docs docs MongoDB → S3 (jsonl.gz) | ${e} s ($(echo "$docs / $e" | bc) docs/s) | driver cursor drain ${d} s | throughput $(ratio "$d" "$e") × | ≥ 0.8 × | $(mib "$(maxof export 3)") MiB |"
  echo "| export $((docs * 4)) docs (4×) | ${ex4} s | – | – | RSS flat | $(mib "$(maxof export_x4 3)") MiB |"
  echo "| load $rows rows JSONL.gz → PostgreSQL | ${l} s | psql \\copy CSV ${p} s | time $(ratio "$l" "$p") × | ≤ 1.3 × | $(mib "$(maxof load 3)") MiB |"
  echo "| copy ${COPY_MIB} MiB FTP → S3 | ${r} s | curl \\| aws s3 cp ${c} s | time $(ratio "$r" "$c") × | ≤ 1.3 × | $(mib "$(maxof copy 3)") MiB |"
  echo
  echo "Medians of $RUNS runs on $(nproc) cores, $(date -u +%Y-%m-%d). Raw figures (name, seconds, peak RSS KiB):"
  echo
  sed 's/^/    /' "$RESULTS"
} > "$SUMMARY"
echo
cat "$SUMMARY"
