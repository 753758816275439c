#!/usr/bin/env bash
# Lints the infrastructure: sam validate --lint, cfn-lint, checkov, the IAM scoping
# (scripts/check_iam.py) and the sample events.
#
#   scripts/lint-infra.sh [PYTHON_BIN_DIR]
#
# PYTHON_BIN_DIR holds sam and cfn-lint (default .venv/bin, installed from
# requirements-dev.txt). checkov cannot share that environment (conflicting exact boto3
# pins), so it lives in .venv-infra/, created here from infra/requirements-checkov.txt.
# Exits non-zero if any tool reports anything.
set -uo pipefail

cd "$(dirname "$0")/.."
BIN_DIR="${1:-.venv/bin}"
TEMPLATE=infra/template.yaml
CHECKOV_VENV=.venv-infra
CHECKOV_REQ=infra/requirements-checkov.txt

export AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 PIP_DISABLE_PIP_VERSION_CHECK=1

for tool in sam cfn-lint; do
    if [[ ! -x "$BIN_DIR/$tool" ]]; then
        echo "lint-infra: $BIN_DIR/$tool not found (pip install -r requirements-dev.txt into it)" >&2
        exit 2
    fi
done

# checkov's own environment, rebuilt when its requirements change.
if [[ ! -x "$CHECKOV_VENV/bin/checkov" ]] || ! cmp -s "$CHECKOV_REQ" "$CHECKOV_VENV/.requirements"; then
    echo "== installing checkov into $CHECKOV_VENV"
    python_bin=python3
    [[ -x "$BIN_DIR/python3" ]] && python_bin="$BIN_DIR/python3"
    rm -rf "$CHECKOV_VENV"
    "$python_bin" -m venv "$CHECKOV_VENV" \
        && "$CHECKOV_VENV/bin/pip" install --quiet -r "$CHECKOV_REQ" \
        && cp "$CHECKOV_REQ" "$CHECKOV_VENV/.requirements" \
        || { echo "lint-infra: checkov installation failed" >&2; exit 2; }
fi

failed=()
run() {
    local name=$1; shift
    echo "== $name"
    if "$@"; then
        echo "-- $name: ok"
    else
        echo "-- $name: FAILED"
        failed+=("$name")
    fi
}

run "sam validate --lint" "$BIN_DIR/sam" validate --lint -t "$TEMPLATE"
run "cfn-lint" "$BIN_DIR/cfn-lint" "$TEMPLATE"
# --skip-download: no calls to the Prisma Cloud API (offline, deterministic).
run "checkov" "$CHECKOV_VENV/bin/checkov" -f "$TEMPLATE" --framework cloudformation \
    --quiet --compact --skip-download
# Least privilege per function: secrets, the table key, the SES identity.
run "check_iam.py" "$BIN_DIR/python3" scripts/check_iam.py "$TEMPLATE"
run "events/*.json parse" "$BIN_DIR/python3" -c '
import json, pathlib, sys
bad = 0
for p in sorted(pathlib.Path("events").glob("*.json")):
    try:
        json.loads(p.read_text())
    except ValueError as e:
        print(f"{p}: {e}"); bad += 1
sys.exit(1 if bad else 0)'

if ((${#failed[@]})); then
    echo "lint-infra: FAILED: ${failed[*]}"
    exit 1
fi
echo "lint-infra: all checks passed"
