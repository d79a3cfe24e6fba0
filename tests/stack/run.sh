#!/usr/bin/env bash
# Tests of the local stack itself: talk to every service with a real client and
# assert real behaviour. A service that is not running is a FAILURE, never a
# skip. Prints one line per check and a closing "N passed, N failed" line; exits
# non-zero if anything failed.
#
#   hack/stack up && tests/stack/run.sh
set -uo pipefail
# With pipefail, never end a pipe in `grep -q`: its early exit SIGPIPEs the
# writer and fails the pipe. `grep ... >/dev/null` reads all input instead.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
eval "$("$ROOT/hack/stack" env)"
STACK=$TRIBUTARY_STACK_DIR
PY=${TRIBUTARY_VENV:-$HOME/.cache/tributary/venv}/bin/python
RUN_ID=$(date +%s)-$$
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

passed=0 failed=0
ok()   { passed=$((passed + 1)); printf 'ok   - %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL - %s: %s\n' "$1" "$2"; }
# check NAME CMD...: run CMD (output to a per-check file), pass if it exits 0.
check() {
  local name=$1; shift
  local out=$WORK/out.$((passed + failed))
  if "$@" > "$out" 2>&1; then ok "$name"; else fail "$name" "$(tail -n 5 "$out" | tr '\n' ' ')"; fi
}
is_pdf() { [[ $(head -c 5 "$1") == "%PDF-" ]] && tail -c 32 "$1" | grep '%%EOF' >/dev/null; }
expect() {  # expect ACTUAL EXPECTED [WHAT]
  [[ $1 == "$2" ]] || { echo "${3:-value}: expected '$2', got '$1'"; return 1; }
}

# ---- Kubernetes ------------------------------------------------------------
k() { kubectl --request-timeout=10s "$@"; }
NS=stack-test-$RUN_ID

t_readyz() { expect "$(k get --raw /readyz)" ok "/readyz"; }
t_version() { k version -o json | grep '"gitVersion": "v1.34' >/dev/null; }
t_namespaces() { k get ns -o name | grep -x namespace/default >/dev/null && k get ns -o name | grep -x namespace/kube-system >/dev/null; }
t_default_sa() { k -n default get serviceaccount default -o name; }
t_configmap() {
  k create namespace "$NS" >/dev/null || return 1
  k -n "$NS" create configmap probe --from-literal=run="$RUN_ID" >/dev/null || return 1
  expect "$(k -n "$NS" get configmap probe -o jsonpath='{.data.run}')" "$RUN_ID" "configmap data" || return 1
  k -n "$NS" delete configmap probe --wait=true >/dev/null || return 1
  ! k -n "$NS" get configmap probe >/dev/null 2>&1
}
t_job_creates_pod() {
  # No kubelet here: the Pod never runs, but the Job controller must create
  # the Pod object (proving kube-controller-manager works); the namespace's
  # default ServiceAccount must appear first (serviceaccount controller).
  local pods
  for _ in $(seq 1 50); do k -n "$NS" get sa default >/dev/null 2>&1 && break; sleep 0.2; done
  cat <<YAML | k -n "$NS" apply -f - >/dev/null || return 1
apiVersion: batch/v1
kind: Job
metadata: {name: probe}
spec:
  backoffLimit: 0
  ttlSecondsAfterFinished: 60
  template:
    spec:
      restartPolicy: Never
      containers: [{name: probe, image: busybox:1.36, command: ["true"]}]
YAML
  for _ in $(seq 1 150); do
    pods=$(k -n "$NS" get pods -l batch.kubernetes.io/job-name=probe -o name 2>/dev/null)
    [[ -n $pods ]] && break
    sleep 0.2
  done
  [[ -n $pods ]] || { echo "the Job controller created no Pod in 30 s"; return 1; }
  expect "$(k -n "$NS" get job probe -o jsonpath='{.status.active}')" 1 "job .status.active"
}
t_delete_namespace() {
  k delete namespace "$NS" --wait=false >/dev/null
}

check "kubernetes: /readyz is ok" t_readyz
check "kubernetes: server is v1.34" t_version
check "kubernetes: kubectl get ns lists default and kube-system" t_namespaces
check "kubernetes: default ServiceAccount exists" t_default_sa
check "kubernetes: create/get/delete a ConfigMap" t_configmap
check "kubernetes: a Job gets a Pod object from the Job controller" t_job_creates_pod
check "kubernetes: delete the test namespace" t_delete_namespace

# ---- PostgreSQL ----------------------------------------------------------------
t_psql() {
  local out
  out=$(psql -XAtq -v ON_ERROR_STOP=1 -c "select current_user || ' ' || current_database() || ' ' || current_setting('server_version_num')::int / 10000") || return 1
  expect "$out" "tributary warehouse 15" "user db major"
}
t_psql_write() {
  local out
  out=$(psql -XAtq -v ON_ERROR_STOP=1 <<SQL
create temporary table probe(id int primary key, v text);
insert into probe values (1, 'a'), (2, 'b');
select count(*) || ':' || string_agg(v, ',' order by id) from probe;
SQL
) || return 1
  expect "$out" "2:a,b" "temp table rows"
}
# TLS with the certificate verified against the stack's CA (host name included),
# and plain TCP still accepted: the server offers TLS, pg_hba does not demand it.
t_psql_tls_verified() {
  local out
  out=$(PGSSLMODE=verify-full PGSSLROOTCERT=$STACK/pki/ca.crt \
    psql -XAtq -v ON_ERROR_STOP=1 -c "select ssl from pg_stat_ssl where pid = pg_backend_pid()") || return 1
  expect "$out" "t" "ssl in pg_stat_ssl"
}
t_psql_plain_still_works() {
  local out
  out=$(PGSSLMODE=disable psql -XAtq -v ON_ERROR_STOP=1 -c "select ssl from pg_stat_ssl where pid = pg_backend_pid()") || return 1
  expect "$out" "f" "ssl in pg_stat_ssl"
}
t_psql_loopback_only() { ss -Htln "sport = :$PGPORT" | awk '{print $4}' | grep -x "127.0.0.1:$PGPORT" >/dev/null; }
check "postgres: psql connects as tributary to warehouse (PostgreSQL 15)" t_psql
check "postgres: create, insert and query a table" t_psql_write
check "postgres: TLS verified against the stack CA (sslmode verify-full)" t_psql_tls_verified
check "postgres: plain TCP still accepted (sslmode disable)" t_psql_plain_still_works
check "postgres: listens on 127.0.0.1 only" t_psql_loopback_only

# ---- MinIO (S3) ---------------------------------------------------------------
s3() {  # s3 METHOD PATH [curl args]: SigV4-signed request
  local method=$1 path=$2; shift 2
  curl -sS --fail-with-body --max-time 20 -X "$method" \
    --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$AWS_ENDPOINT_URL$path" "$@"
}
KEY=stack-test/$RUN_ID/hello.txt
t_s3_put() { printf 'tributary %s\n' "$RUN_ID" > "$WORK/obj"; s3 PUT "/raw/$KEY" --data-binary "@$WORK/obj" -o /dev/null; }
t_s3_get() { s3 GET "/raw/$KEY" -o "$WORK/obj.back" && cmp "$WORK/obj" "$WORK/obj.back"; }
t_s3_list() {
  # SigV4 signs the canonical query string, in which "/" must be %2F; curl
  # signs the query as given, so encode it here.
  s3 GET "/raw?list-type=2&prefix=stack-test%2F$RUN_ID%2F" -o "$WORK/list.xml" || return 1
  grep -q "<Key>$KEY</Key>" "$WORK/list.xml" || { cat "$WORK/list.xml"; return 1; }
}
t_s3_delete() { s3 DELETE "/raw/$KEY" -o /dev/null && ! s3 GET "/raw/$KEY" -o /dev/null 2>/dev/null; }
t_s3_auth() {  # wrong secret must be refused
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:wrong" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$AWS_ENDPOINT_URL/raw?list-type=2")
  expect "$code" 403 "HTTP status with a wrong secret"
}
check "minio: PUT an object into raw (SigV4)" t_s3_put
check "minio: GET returns the same bytes" t_s3_get
check "minio: ListObjectsV2 shows the key" t_s3_list
check "minio: DELETE removes it" t_s3_delete
check "minio: a wrong secret is refused" t_s3_auth

# ---- MongoDB wire protocol (FerretDB) --------------------------------------------
t_mongo() {
  "$PY" - "$MONGODB_URI" "$STACK/seed/mongo-size" <<'PY'
import math, sys
import pymongo
uri, size_file = sys.argv[1], sys.argv[2]
size = open(size_file).read().strip()
expected = {"full": 541909, "small": 5000}.get(size) or int(size)
c = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
assert c.admin.command("ping")["ok"] == 1.0
coll = c.retail.customer_transactions
# collStats counts rows in FerretDB's SQLite table (~1 s); count_documents({})
# would decode all 541,909 documents (~50 s). Both are real server answers.
n = int(c.retail.command("collStats", "customer_transactions")["count"])
assert n == expected, f"collStats count {n} != {expected}"
doc = coll.find_one({"InvoiceNo": "536365"})
for field, kind in [("StockCode", str), ("Quantity", int), ("InvoiceDate", str), ("UnitPrice", float), ("Country", str)]:
    assert isinstance(doc[field], kind), (field, doc)
assert doc["InvoiceDate"].startswith("12/1/2010 "), doc
cancelled = coll.find_one({"InvoiceNo": {"$regex": "^C"}})
assert cancelled and cancelled["Quantity"] < 0, cancelled
# The mess, measured on the first 20,000 rows (a full scan is slow on FerretDB).
sample = list(coll.find({}, {"CustomerID": 1, "Description": 1}).limit(min(expected, 20000)))
assert len(sample) == min(expected, 20000), len(sample)
missing = sum(1 for d in sample if "CustomerID" not in d)
null = sum(1 for d in sample if "CustomerID" in d and d["CustomerID"] is None)
assert missing > 0 and null > 0, (missing, null)
share = (missing + null) / len(sample)
assert 0.15 < share < 0.35, f"missing/null CustomerID share {share:.3f}"
assert any(isinstance(d.get("CustomerID"), float) for d in sample)
print(f"count={expected} missing={missing} null={null}")
PY
}
t_mongo_write() {
  "$PY" - "$MONGODB_URI" "$RUN_ID" <<'PY'
import sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)
coll = c.stack_test["probe_" + sys.argv[2].replace("-", "_")]
coll.insert_many([{"i": i} for i in range(100)])
assert coll.count_documents({"i": {"$gte": 50}}) == 50
assert [d["i"] for d in coll.find({}, sort=[("i", -1)], limit=3)] == [99, 98, 97]
coll.drop()
PY
}
check "mongodb: retail.customer_transactions has the seeded count and shape" t_mongo
check "mongodb: insert, query, sort and drop" t_mongo_write

# ---- FTP / FTPS -----------------------------------------------------------------
FTP=$TRIBUTARY_FTP_URL
t_ftp_list() {
  local listing
  listing=$(curl -sS --fail --max-time 20 --list-only "$FTP/procedures/") || return 1
  [[ $(grep -c '\.pdf$' <<< "$listing") -eq 3 ]] || { echo "listing: $listing"; return 1; }
}
t_ftp_get() {
  curl -sS --fail --max-time 20 -o "$WORK/ftp.pdf" "$FTP/procedures/returns-and-cancellations.pdf" && is_pdf "$WORK/ftp.pdf"
}
t_ftp_csv() {
  curl -sS --fail --max-time 20 -o "$WORK/ftp.csv" "$FTP/customers/customers.csv" || return 1
  head -1 "$WORK/ftp.csv" | grep '^CustomerID,' >/dev/null && [[ $(wc -l < "$WORK/ftp.csv") -gt 1000 ]]
}
t_ftp_put() {
  printf 'upload %s\n' "$RUN_ID" > "$WORK/up.txt"
  curl -sS --fail --max-time 20 -T "$WORK/up.txt" "$FTP/upload-$RUN_ID.txt" || return 1
  curl -sS --fail --max-time 20 "$FTP/upload-$RUN_ID.txt" | grep "$RUN_ID" >/dev/null || return 1
  curl -sS --fail --max-time 20 -o /dev/null -Q "DELE upload-$RUN_ID.txt" "$FTP/"
}
t_ftps() {
  # Explicit FTPS: AUTH TLS on the control port, TLS data connections too.
  # --cacert pins the stack's self-signed certificate (no -k).
  curl -sS --fail --max-time 20 --ssl-reqd --cacert "$STACK/pki/ftp.crt" --list-only "$FTP/procedures/" | grep '\.pdf$' >/dev/null || return 1
  curl -sS --fail --max-time 20 --ssl-reqd --cacert "$STACK/pki/ftp.crt" -o "$WORK/ftps.pdf" \
    "$FTP/procedures/data-handling-policy.pdf" && is_pdf "$WORK/ftps.pdf"
}
t_ftp_bad_password() {
  ! curl -s --fail --max-time 20 --list-only "ftp://tributary:wrong@127.0.0.1:2121/" >/dev/null
}
check "ftp: list /procedures shows 3 PDFs" t_ftp_list
check "ftp: download a PDF (magic bytes %PDF-)" t_ftp_get
check "ftp: download /customers/customers.csv" t_ftp_csv
check "ftp: upload, read back and delete a file" t_ftp_put
check "ftps: explicit TLS list + download with the stack's certificate" t_ftps
check "ftp: a wrong password is refused" t_ftp_bad_password

# ---- SFTP ---------------------------------------------------------------------
SFTP_HOSTKEY=$(ssh-keygen -lf "$STACK/sftp/ssh_host_ed25519_key.pub" -E sha256 2>/dev/null | awk '{print $2}' | sed 's/^SHA256://')
t_sftp_list() {
  local listing
  # --hostpubsha256 pins the server's host key instead of skipping the check.
  listing=$(curl -sS --fail --max-time 20 --hostpubsha256 "$SFTP_HOSTKEY" --list-only "$TRIBUTARY_SFTP_URL/procedures/") || return 1
  [[ $(grep -c '\.pdf$' <<< "$listing") -eq 3 ]] || { echo "listing: $listing"; return 1; }
}
t_sftp_get() {
  curl -sS --fail --max-time 20 --hostpubsha256 "$SFTP_HOSTKEY" -o "$WORK/sftp.pdf" \
    "$TRIBUTARY_SFTP_URL/procedures/new-starter-onboarding.pdf" && is_pdf "$WORK/sftp.pdf"
}
t_sftp_key() {
  curl -sS --fail --max-time 20 --hostpubsha256 "$SFTP_HOSTKEY" --key "$TRIBUTARY_SFTP_KEY" --pubkey "$TRIBUTARY_SFTP_KEY.pub" \
    -o "$WORK/sftp.csv" "sftp://tributary@127.0.0.1:2222/customers/customers.csv" || return 1
  head -1 "$WORK/sftp.csv" | grep '^CustomerID,' >/dev/null
}
t_sftp_put() {
  printf 'upload %s\n' "$RUN_ID" > "$WORK/sup.txt"
  curl -sS --fail --max-time 20 --hostpubsha256 "$SFTP_HOSTKEY" -T "$WORK/sup.txt" "$TRIBUTARY_SFTP_URL/inbox/up-$RUN_ID.txt" || return 1
  curl -sS --fail --max-time 20 --hostpubsha256 "$SFTP_HOSTKEY" -o "$WORK/sup.back" "$TRIBUTARY_SFTP_URL/inbox/up-$RUN_ID.txt" || return 1
  cmp "$WORK/sup.txt" "$WORK/sup.back" || return 1
  curl -sS --fail --max-time 20 --hostpubsha256 "$SFTP_HOSTKEY" -o /dev/null -Q "rm /inbox/up-$RUN_ID.txt" "$TRIBUTARY_SFTP_URL/"
}
t_sftp_bad_password() {
  ! curl -s --fail --max-time 20 --hostpubsha256 "$SFTP_HOSTKEY" --list-only "sftp://tributary:wrong@127.0.0.1:2222/" >/dev/null
}
check "sftp: list /procedures (password) shows 3 PDFs" t_sftp_list
check "sftp: download a PDF (magic bytes %PDF-)" t_sftp_get
check "sftp: ed25519 key authentication reads customers.csv" t_sftp_key
check "sftp: upload to /inbox, read back and delete" t_sftp_put
check "sftp: a wrong password is refused" t_sftp_bad_password

# ---- HTTP file server -----------------------------------------------------------
t_http_pdf() {
  local type
  type=$(curl -sS --fail --max-time 10 -o "$WORK/http.pdf" -w '%{content_type}' "$TRIBUTARY_HTTP_URL/procedures/returns-and-cancellations.pdf") || return 1
  expect "$type" application/pdf "Content-Type" && is_pdf "$WORK/http.pdf"
}
t_http_listing() {
  curl -sS --fail --max-time 10 "$TRIBUTARY_HTTP_URL/_listing.json?path=/procedures" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
pdfs = [e for e in d["entries"] if e["type"] == "file" and e["name"].endswith(".pdf")]
assert len(pdfs) == 3, d
assert all(e["path"].startswith("/procedures/") and e["size"] > 500 for e in pdfs), d'
}
t_http_same_bytes() {  # the three servers serve identical seed files
  cmp "$WORK/http.pdf" "$WORK/ftp.pdf"
}
check "http: GET a PDF (application/pdf, %PDF- magic)" t_http_pdf
check "http: JSON listing of /procedures" t_http_listing
check "http: same bytes as on FTP" t_http_same_bytes

# ---- loopback only -------------------------------------------------------------
t_loopback_only() {
  # Every TCP listener of every stack process group must be on 127.0.0.0/8 or ::1.
  local f pid pgids="" bad
  for f in "$STACK"/run/*.pid; do read -r pid _ < "$f"; pgids+=" $(ps -o pgid= -p "$pid" | tr -d ' ')"; done
  bad=$(ss -Htlnp | while read -r _ _ _ addr _ users; do
    # shellcheck disable=SC2013 # one PID per word
    for pid in $(grep -o 'pid=[0-9]*' <<< "$users" | cut -d= -f2); do
      [[ " $pgids " == *" $(ps -o pgid= -p "$pid" | tr -d ' ') "* ]] || continue
      [[ $addr == 127.* || $addr == '[::1]:'* ]] || echo "$addr $users"
    done
  done)
  [[ -z $bad ]] || { echo "non-loopback listeners: $bad"; return 1; }
}
check "all stack listeners are on loopback" t_loopback_only

echo
echo "stack: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
