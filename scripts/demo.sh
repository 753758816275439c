#!/usr/bin/env bash
# The `make run` demo: start the Classy sandbox with demo data, onboard its organizations,
# run a full sync, change some records in the sandbox, run an incremental sync that picks up
# exactly those changes, print the status, show an event-triggered sync (`run --listen`
# receives the sandbox's Svix-signed webhook for a new donation; the seconds from the donation
# to the record in the store are printed), push to Mailchimp, and stop the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
BIN=${CARGO_TARGET_DIR:-target}/release/classy-sync
SANDBOX_BIN=${CARGO_TARGET_DIR:-target}/release/classy-sandbox
DATA_DIR=${DEMO_DATA_DIR:-.classy-sync/demo}
ORGS=${DEMO_ORGS:-3}
SUPPORTERS=${DEMO_SUPPORTERS:-10000}
TRANSACTIONS=${DEMO_TRANSACTIONS:-20000}
WORK=$(mktemp -d)
SANDBOX_PID=
RUN_PID=

cleanup() {
  if [ -n "$RUN_PID" ]; then
    kill "$RUN_PID" 2>/dev/null || true
    wait "$RUN_PID" 2>/dev/null || true
  fi
  if [ -n "$SANDBOX_PID" ]; then
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

json() { "$PYTHON" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

echo "== Starting the Classy sandbox: $ORGS organizations, $SUPPORTERS supporters and $TRANSACTIONS transactions each"
"$SANDBOX_BIN" --port 0 --orgs "$ORGS" --supporters "$SUPPORTERS" --transactions "$TRANSACTIONS" \
  --campaigns 40 --plans 1000 >"$WORK/ready.json" 2>"$WORK/sandbox.log" &
SANDBOX_PID=$!
for _ in $(seq 1 600); do
  [ -s "$WORK/ready.json" ] && break
  kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$WORK/sandbox.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$WORK/ready.json" ] || { echo "the sandbox did not start" >&2; exit 1; }
BASE=$(json "$WORK/ready.json" 'd["base_url"]')
export CLASSY_API_BASE_URL=$(json "$WORK/ready.json" 'd["api_base_url"]')
export CLASSY_AUTH_URL=$(json "$WORK/ready.json" 'd["auth_url"]')
# The sandbox speaks plain http: a development URL, allowed only with this switch.
export CLASSY_SYNC_ALLOW_DEV_URLS=1
# The sandbox has no rate limit; the real API allows 1,800 requests a minute per application.
export CLASSY_RATE_LIMIT_PER_MINUTE=${CLASSY_RATE_LIMIT_PER_MINUTE:-0}
echo "   sandbox at $BASE"

rm -rf "$DATA_DIR"
export CLASSY_SYNC_DATA_DIR=$DATA_DIR

echo "== Onboarding the organizations"
"$PYTHON" - "$WORK/ready.json" >"$WORK/orgs.tsv" <<'PY'
import json, sys
for app in json.load(open(sys.argv[1]))["apps"]:
    for org in app["organizations"]:
        print(f'{org}\t{app["client_id"]}\t{app["client_secret"]}')
PY
n=0
while IFS=$'\t' read -r org client secret; do
  n=$((n + 1))
  CLASSY_CLIENT_SECRET="$secret" "$BIN" org add "$org" --name "Demo Organization $n" --client-id "$client"
done <"$WORK/orgs.tsv"
"$BIN" org list

echo "== Full sync"
"$BIN" sync --all

echo "== Changing records in the sandbox"
FIRST_ORG=$(head -n1 "$WORK/orgs.tsv" | cut -f1)
"$PYTHON" - "$BASE" "$FIRST_ORG" <<'PY'
import json, sys, urllib.request
base, org = sys.argv[1], sys.argv[2]
def call(method, path, body):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
touched = call("POST", f"/admin/orgs/{org}/supporters/touch", {"count": 25})
print(f"   touched {len(touched['ids'])} supporters of organization {org}")
txns = json.load(urllib.request.urlopen(f"{base}/admin/orgs/{org}/transactions"))
ok = [t for t in txns if t["status"] == "success"][:10]
for t in ok:
    call("PATCH", f"/admin/orgs/{org}/transactions/{t['id']}", {"status": "refunded"})
print(f"   refunded {len(ok)} transactions of organization {org}")
new = call("POST", f"/admin/orgs/{org}/supporters", {"first_name": "Grace", "last_name": "Hopper",
            "email_address": "grace.hopper@example.org", "opt_in": True})
print(f"   created supporter {new['id']}")
PY

echo "== Incremental sync (expect 26 supporters and 10 transactions changed in organization $FIRST_ORG)"
"$BIN" sync --all

echo "== Status"
"$BIN" status

echo "== Event-triggered sync: GoFundMe Pro webhooks (Svix-signed, sent by the sandbox)"
PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
WEBHOOK_SECRET=$("$PYTHON" -c 'import base64, os; print("whsec_" + base64.b64encode(os.urandom(24)).decode())')
CLASSY_WEBHOOK_SECRET="$WEBHOOK_SECRET" "$BIN" org webhook "$FIRST_ORG"
"$BIN" org webhook "$FIRST_ORG" --show --url "http://127.0.0.1:$PORT"
"$BIN" run --listen "127.0.0.1:$PORT" >"$WORK/run.out" 2>"$WORK/run.log" &
RUN_PID=$!
"$PYTHON" - "$BASE" "$FIRST_ORG" "$PORT" "$WEBHOOK_SECRET" "$BIN" "$RUN_PID" <<'PY'
import json, os, socket, subprocess, sys, time, urllib.request
base, org, port, secret, binary, run_pid = sys.argv[1:7]
def call(method, path, body):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
deadline = time.time() + 30
while True:
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
        break
    except OSError:
        os.kill(int(run_pid), 0)  # the listener exited: fail
        if time.time() > deadline:
            sys.exit("classy-sync run --listen did not start listening")
        time.sleep(0.1)
url = f"http://127.0.0.1:{port}/webhooks/classy/{org}"
call("PUT", f"/admin/orgs/{org}/webhook", {"url": url, "secret": secret})
print(f"   classy-sync run --listen 127.0.0.1:{port}; sandbox endpoint for organization {org}: {url}")
started = time.time()
txn = call("POST", f"/admin/orgs/{org}/transactions", {
    "status": "success", "currency_code": "USD", "raw_currency_code": "USD",
    "total_gross_amount": 42.0, "donation_gross_amount": 42.0, "raw_total_gross_amount": 42.0,
    "raw_donation_gross_amount": 42.0, "billing_first_name": "Grace", "billing_last_name": "Hopper"})
print(f"   donation: transaction {txn['id']} of 42.00 USD")
def stored():
    out = subprocess.run([binary, "export", org, "--entity", "transactions"], check=True,
                         capture_output=True, text=True).stdout
    return any(json.loads(line).get("id") == txn["id"] for line in out.splitlines() if line)
while not stored():
    if time.time() - started > 120:
        sys.exit(f"transaction {txn['id']} not in the store after 120 s")
    time.sleep(0.25)
elapsed = time.time() - started
hooks = json.load(urllib.request.urlopen(f"{base}/admin/webhooks"))["counters"]
print(f"   transaction {txn['id']} is in the store {elapsed:.1f} s after the donation "
      f"(webhooks sent {hooks['sent']}, retried {hooks['retried']}, failed {hooks['failed']})")
PY
kill -TERM "$RUN_PID"
wait "$RUN_PID" || { echo "classy-sync run --listen did not stop cleanly" >&2; cat "$WORK/run.log" >&2; exit 1; }
RUN_PID=
echo "   listener stopped"

echo "== Mailchimp: one audience per organization in the sandbox, then a push"
export MAILCHIMP_API_KEY=$(json "$WORK/ready.json" 'd["mailchimp"]["api_key"]')
export MAILCHIMP_API_BASE_URL=$(json "$WORK/ready.json" 'd["mailchimp"]["api_base_url"]')
while IFS=$'\t' read -r org _ _; do
  "$PYTHON" - "$BASE" "$org" <<'PY'
import json, sys, urllib.request
base, org = sys.argv[1], sys.argv[2]
req = urllib.request.Request(base + "/admin/mailchimp/lists", method="POST",
                             data=json.dumps({"id": f"demo{org}", "name": f"Demo {org}"}).encode(),
                             headers={"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
PY
  "$BIN" org plugin add "$org" mailchimp --list-id "demo$org"
done <"$WORK/orgs.tsv"
"$BIN" push --all --dry-run | tail -n 8
"$BIN" push --all
echo "== A second push sends nothing (only changes are pushed)"
"$BIN" push --all
"$BIN" org plugin show "$FIRST_ORG"
"$PYTHON" - "$BASE" "$FIRST_ORG" <<'PY'
import json, sys, urllib.request
base, org = sys.argv[1], sys.argv[2]
members = json.load(urllib.request.urlopen(f"{base}/admin/mailchimp/lists/demo{org}/members"))["members"]
by_status = {}
for m in members:
    by_status[m["status"]] = by_status.get(m["status"], 0) + 1
tags = {}
for m in members:
    for t in m["tags"]:
        tags[t] = tags.get(t, 0) + 1
print(f"   audience demo{org}: {len(members)} members {by_status}; tags {tags}")
PY
echo "== HTML report of the demo organizations"
REPORT_FILE=$(realpath -m "$DATA_DIR/report.html")
"$BIN" report preview all --period 12m --format html --output "$REPORT_FILE"
echo "   report written to $REPORT_FILE"
echo "Local data is in $DATA_DIR; try: $BIN --data-dir $DATA_DIR export $FIRST_ORG --entity supporters --format csv | head"
