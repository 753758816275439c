#!/usr/bin/env bash
# Builds the Classy sandbox, starts it on a free port and runs the shared contract checker
# against it in default mode. Usage: bash scripts/classy-contract.sh [PYTHON]
set -euo pipefail

PYTHON="${1:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECKER="$ROOT/../shared/tools/classy_contract_check.py"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[ -f "$CHECKER" ] || { echo "classy-contract: checker not found at $CHECKER" >&2; exit 2; }

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

"$TARGET/release/classy-sandbox" --port 0 >"$WORK/ready" 2>"$WORK/log" &
SANDBOX_PID=$!

for _ in $(seq 1 300); do
    [ -s "$WORK/ready" ] && break
    kill -0 "$SANDBOX_PID" 2>/dev/null || { echo "classy-contract: sandbox exited early" >&2; cat "$WORK/log" >&2; exit 2; }
    sleep 0.1
done
[ -s "$WORK/ready" ] || { echo "classy-contract: sandbox not ready after 30 s" >&2; exit 2; }

read -r BASE ID SECRET ORG < <("$PYTHON" -c '
import json, sys
r = json.loads(open(sys.argv[1]).readline())
a = r["apps"][0]
print(r["base_url"], a["client_id"], a["client_secret"], a["organizations"][0])
' "$WORK/ready")

echo "classy-contract: checking $BASE (client $ID, org $ORG)" >&2
set +e
"$PYTHON" "$CHECKER" --base "$BASE" --client-id "$ID" --client-secret "$SECRET" --org "$ORG"
STATUS=$?
set -e
exit "$STATUS"
