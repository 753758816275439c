#!/usr/bin/env bash
# The real Lambda runtime path, end to end: `cargo lambda watch` runs the functions behind a
# local Lambda runtime API; `cargo lambda invoke` sends them the sample events in events/.
# AWS is moto_server, Classy is the sandbox. The organizations are onboarded with the CLI's
# `--backend aws`. Checks: dispatch enqueues a job per organization, sync-worker consumes
# them (and the sample SQS events) without batch failures, and the table holds the
# sandbox's records; health-check, alert and report accept their sample events.
#
#   bash scripts/lambda-invoke-test.sh [PYTHON]   (PYTHON's bin dir must hold moto_server
#                                                  and cargo-lambda)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}
BIN_DIR=$(cd "$(dirname "$PYTHON")" && pwd)
export PATH="$BIN_DIR:$PATH"
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # file or port, description
  for _ in $(seq 1 600); do
    if [[ "$1" =~ ^[0-9]+$ ]]; then (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    else [ -s "$1" ] && return 0; fi
    sleep 0.2
  done
  echo "lambda-invoke-test: $2 did not come up" >&2; return 1
}

echo "== building"
cargo build --locked -p classy-sync-cli -p classy-sync-functions -p classy-sandbox >&2
CLI="$TARGET/debug/classy-sync"

MOTO_PORT=$(free_port)
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
wait_for "$MOTO_PORT" moto_server
"$TARGET/debug/classy-sandbox" --port 0 --orgs 2 --supporters 300 --transactions 500 --campaigns 5 --plans 40 \
  >"$WORK/ready.json" 2>"$WORK/sandbox.log" &
PIDS+=($!)
wait_for "$WORK/ready.json" "the sandbox"

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=AKIDLOCAL AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true
"$PYTHON" - "$WORK" <<'PY'
import boto3, json, sys
work = sys.argv[1]
ddb = boto3.client("dynamodb")
ddb.create_table(TableName="classy-sync", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1")],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    GlobalSecondaryIndexes=[{"IndexName": "gsi1", "Projection": {"ProjectionType": "ALL"},
        "KeySchema": [{"AttributeName": "gsi1", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]}])
sqs = boto3.client("sqs")
dlq = sqs.create_queue(QueueName="classy-sync-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
q = sqs.create_queue(QueueName="classy-sync", Attributes={"VisibilityTimeout": "60",
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})})["QueueUrl"]
pq = sqs.create_queue(QueueName="classy-sync-plugins")["QueueUrl"]
boto3.client("events").create_event_bus(Name="classy-sync")
ready = json.load(open(f"{work}/ready.json"))
with open(f"{work}/env", "w") as f:
    for k, v in {"CLASSY_SYNC_TABLE": "classy-sync", "CLASSY_SYNC_QUEUE_URL": q, "CLASSY_SYNC_DLQ_URL": dlq,
                 "CLASSY_SYNC_EVENT_BUS": "classy-sync", "CLASSY_SYNC_PLUGIN_QUEUE_URL": pq,
                 "CLASSY_SYNC_EMAIL_FROM": "alerts@example.org", "CLASSY_API_BASE_URL": ready["api_base_url"],
                 "CLASSY_AUTH_URL": ready["auth_url"], "CLASSY_RATE_LIMIT_PER_MINUTE": "0",
                 "CLASSY_SYNC_ALLOW_DEV_URLS": "1"}.items():
        f.write(f"{k}={v}\n")
with open(f"{work}/orgs.tsv", "w") as f:
    for app in ready["apps"]:
        for org in app["organizations"]:
            f.write(f'{org}\t{app["client_id"]}\t{app["client_secret"]}\n')
PY
set -a; . "$WORK/env"; set +a

echo "== onboarding with --backend aws"
while IFS=$'\t' read -r org client secret; do
  CLASSY_CLIENT_SECRET="$secret" "$CLI" --backend aws org add "$org" --name "Org $org" --client-id "$client"
done <"$WORK/orgs.tsv"
ORGS=$(cut -f1 "$WORK/orgs.tsv" | tr '\n' ' ')

echo "== cargo lambda watch"
INVOKE_PORT=$(free_port)
{
  # AWS_LAMBDA_* and the stack's variables reach the functions through the env file.
  env | grep -E '^(AWS_ENDPOINT_URL|AWS_REGION|AWS_DEFAULT_REGION|AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY|AWS_EC2_METADATA_DISABLED)='
  cat "$WORK/env"
  echo "RUST_LOG=info"
  # The emulator gives each invocation the default 30 s: stop 2 s before it, not 30.
  echo "CLASSY_SYNC_DEADLINE_MARGIN_SECS=2"
} >"$WORK/lambda.env"
cargo lambda watch --timeout 120 --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" --env-file "$WORK/lambda.env" \
  >"$WORK/watch.log" 2>&1 &
PIDS+=($!)
wait_for "$INVOKE_PORT" "cargo lambda watch"

invoke() { # function, event file
  cargo lambda invoke "$1" --invoke-address 127.0.0.1 --invoke-port "$INVOKE_PORT" --data-file "$2" \
    || { echo "--- watch log"; tail -50 "$WORK/watch.log"; return 1; }
}

for entity in supporters campaigns transactions recurring-plans; do
  out=$(invoke dispatch "events/dispatch-$entity.json")
  echo "dispatch $entity: $out"
  "$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); want=sorted(map(int,sys.argv[2].split())); assert sorted(r["enqueued"])==want, (r, want)' "$out" "$ORGS"
done
out=$(invoke dispatch events/dispatch-scheduled-event.json)
echo "dispatch again (scheduled-event shape): $out"
"$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["enqueued"]==[] and len(r["already_queued"])==2, r' "$out"

echo "== sync-worker on the queued jobs"
for round in $(seq 1 20); do
  "$PYTHON" - "$WORK/batch.json" <<'PY' || break
import boto3, hashlib, json, os, sys
sqs = boto3.client("sqs")
url = os.environ["CLASSY_SYNC_QUEUE_URL"]
msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
if not msgs:
    sys.exit(1)
records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:classy-sync",
            "awsRegion": "us-east-1"} for m in msgs]
json.dump({"Records": records}, open(sys.argv[1], "w"))
for m in msgs:  # what the event source mapping does after a successful batch
    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
PY
  out=$(invoke sync-worker "$WORK/batch.json")
  echo "sync-worker batch $round: $out"
  "$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["batchItemFailures"]==[], r' "$out"
done

echo "== sync-worker on the sample events"
for f in events/sync-worker-one-job.json events/sync-worker-batch.json; do
  out=$(invoke sync-worker "$f")
  echo "$f: $out"
  "$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["batchItemFailures"]==[], r' "$out"
done

echo "== the table holds the sandbox's records"
BASE=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["base_url"])' "$WORK/ready.json")
for org in $ORGS; do
  for entity in supporters campaigns transactions recurring-plans; do
    path=$entity; [ "$entity" = recurring-plans ] && path=recurring-donation-plans
    want=$("$PYTHON" -c 'import json,sys,urllib.request; print(len(json.load(urllib.request.urlopen(sys.argv[1]))))' "$BASE/admin/orgs/$org/$path")
    got=$("$CLI" --backend aws export "$org" --entity "$entity" | wc -l)
    echo "org $org $entity: stored $got, sandbox $want"
    [ "$got" -eq "$want" ]
  done
done
"$CLI" --backend aws status
"$CLI" --backend aws status --json | "$PYTHON" -c '
import json, sys
rows = json.load(sys.stdin)
bad = [(r["org"], r["entity"]) for r in rows if not r["last_run"] or r["last_run"]["outcome"] != "succeeded" or r["resumable"]]
assert not bad, f"not completed: {bad}"
' || { grep -E "run_for_ms|continues|completed" "$WORK/watch.log" | tail -20; exit 1; }
echo "== health-check, alert and report take their sample events"
out=$(invoke health-check events/health-check-scheduled.json)
echo "health-check: $(echo "$out" | head -c 300)"
"$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["status"] in ("pass","warn","fail"), r' "$out"
out=$(invoke alert events/sync-failed.json)
echo "alert: $out"
"$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["trigger"]=="SyncFailed", r' "$out"
out=$(invoke report events/report-hourly.json)
echo "report: $out"
"$PYTHON" -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["sent"]==[] and r["failed_deliveries"]==0, r' "$out"
echo "lambda-invoke-test: passed"
