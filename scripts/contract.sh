#!/usr/bin/env bash
# Builds the sandbox, starts it on a free loopback port in default mode and runs both shared
# contract checkers against it: Classy API 2.0 and the Mailchimp /3.0 stand-in.
# Usage: bash scripts/contract.sh [PYTHON]
set -euo pipefail

PYTHON="${1:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECKER="$ROOT/../shared/tools/classy_contract_check.py"
MC_CHECKER="$ROOT/../shared/tools/mailchimp_contract_check.py"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
for c in "$CHECKER" "$MC_CHECKER"; do
  [ -f "$c" ] || { echo "contract: checker not found at $c" >&2; exit 2; }
done

# The dev build the tests already made: the contract checks behaviour, not speed, and a second
# (release) build of every dependency would double the disk and time `make test` needs.
cargo build --locked -p classy-sandbox --manifest-path "$ROOT/Cargo.toml" >&2

WORK="$(mktemp -d)"
SANDBOX_PID=""
cleanup() {
    if [ -n "$SANDBOX_PID" ] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
        kill -TERM "$SANDBOX_PID" 2>/dev/null || true
        wait "$SANDBOX_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$TARGET/debug/classy-sandbox" --port 0 >"$WORK/ready" 2>"$WORK/log" &
SANDBOX_PID=$!

for _ in $(seq 1 300); do
    [ -s "$WORK/ready" ] && break
    kill -0 "$SANDBOX_PID" 2>/dev/null || { echo "contract: sandbox exited early" >&2; cat "$WORK/log" >&2; exit 2; }
    sleep 0.1
done
[ -s "$WORK/ready" ] || { echo "contract: sandbox not ready after 30 s" >&2; exit 2; }

read -r BASE ID SECRET ORG MC_BASE MC_KEY MC_LIST < <("$PYTHON" -c '
import json, sys
r = json.loads(open(sys.argv[1]).readline())
a, m = r["apps"][0], r["mailchimp"]
print(r["base_url"], a["client_id"], a["client_secret"], a["organizations"][0],
      m["api_base_url"], m["api_key"], m["list_id"])
' "$WORK/ready")

STATUS=0
echo "contract: Classy, checking $BASE (client $ID, org $ORG)" >&2
"$PYTHON" "$CHECKER" --base "$BASE" --client-id "$ID" --client-secret "$SECRET" --org "$ORG" || STATUS=1
echo "contract: Mailchimp, checking $MC_BASE (list $MC_LIST)" >&2
"$PYTHON" "$MC_CHECKER" --base "$MC_BASE" --api-key "$MC_KEY" --list-id "$MC_LIST" || STATUS=1
exit "$STATUS"
