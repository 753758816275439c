#!/usr/bin/env bash
# Builds the sandbox, starts it on a free loopback port and runs the shared Mailchimp contract
# checker against its /3.0 stand-in in default mode. Usage: bash scripts/mailchimp-contract.sh [PYTHON]
set -euo pipefail

PYTHON="${1:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECKER="$ROOT/../shared/tools/mailchimp_contract_check.py"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[ -f "$CHECKER" ] || { echo "mailchimp-contract: checker not found at $CHECKER" >&2; exit 2; }

cargo build --release -p classy-sandbox --manifest-path "$ROOT/Cargo.toml" >&2

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

# Few Classy records: only the Mailchimp side is checked here.
"$TARGET/release/classy-sandbox" --port 0 --orgs 1 --supporters 10 --transactions 10 --plans 2 \
    >"$WORK/ready" 2>"$WORK/log" &
SANDBOX_PID=$!

for _ in $(seq 1 300); do
    [ -s "$WORK/ready" ] && break
    kill -0 "$SANDBOX_PID" 2>/dev/null || { echo "mailchimp-contract: sandbox exited early" >&2; cat "$WORK/log" >&2; exit 2; }
    sleep 0.1
done
[ -s "$WORK/ready" ] || { echo "mailchimp-contract: sandbox not ready after 30 s" >&2; exit 2; }

read -r BASE KEY LIST < <("$PYTHON" -c '
import json, sys
m = json.loads(open(sys.argv[1]).readline())["mailchimp"]
print(m["api_base_url"], m["api_key"], m["list_id"])
' "$WORK/ready")

echo "mailchimp-contract: checking $BASE (list $LIST)" >&2
set +e
"$PYTHON" "$CHECKER" --base "$BASE" --api-key "$KEY" --list-id "$LIST"
STATUS=$?
set -e
exit "$STATUS"
