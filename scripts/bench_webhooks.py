#!/usr/bin/env python3
"""`make bench` (webhooks): event-triggered syncs with the release CLI and the sandbox's
Svix-signed webhooks against `classy-sync run --listen`.

1. change -> record stored: BENCH_WEBHOOK_CHANGES (200) single donations made in the sandbox
   0.5-1.5 s apart; each one's seconds until `classy-sync export` shows it (polled every
   0.25 s); p50 and p95 (target p95 <= 15 s).
2. burst: 1,000 supporters of the organization changed at once (1,000 supporter.updated
   events from the sandbox); syncs started for the supporters pair (target <= 2) and changes
   lost (records whose stored updated_at differs from the sandbox's once quiet; target 0).
3. receiver latency: 1,000 signed requests sent one after the other to the listener; p99 of
   the round trip over loopback (target <= 50 ms).
Writes bench-results/webhooks.json.
"""
import base64, hashlib, hmac, json, os, random, socket, subprocess, sys, tempfile, time
import urllib.request
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "classy-sync")
SANDBOX_BIN = os.path.join(TARGET, "release", "classy-sandbox")
CHANGES = int(os.environ.get("BENCH_WEBHOOK_CHANGES", "200"))
BURST = int(os.environ.get("BENCH_WEBHOOK_BURST", "1000"))
PROBES = int(os.environ.get("BENCH_WEBHOOK_PROBES", "1000"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * len(xs) + 0.5)) - 1))]


def call(base, method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main():
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "classy-sync-cli", "-p", "classy-sandbox"],
                   cwd=ROOT, check=True)
    sandbox = subprocess.Popen([SANDBOX_BIN, "--port", "0", "--orgs", "1", "--supporters", str(max(BURST, 2000)),
                                "--transactions", "2000", "--campaigns", "5", "--plans", "50"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    run = None
    data = tempfile.mkdtemp(prefix="classy-bench-webhooks-")
    try:
        ready = json.loads(sandbox.stdout.readline())
        base = ready["base_url"]
        app = ready["apps"][0]
        org = str(app["organizations"][0])
        env = dict(os.environ, CLASSY_SYNC_DATA_DIR=data, CLASSY_API_BASE_URL=ready["api_base_url"],
                   CLASSY_AUTH_URL=ready["auth_url"], CLASSY_CLIENT_SECRET=app["client_secret"],
                   CLASSY_SYNC_ALLOW_DEV_URLS="1", CLASSY_RATE_LIMIT_PER_MINUTE="0")
        sh = lambda *a, **kw: subprocess.run([BIN, *a], env=env, check=True, capture_output=True, text=True, **kw)
        sh("org", "add", org, "--name", "Bench", "--client-id", app["client_id"])
        sh("sync", org)
        secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        subprocess.run([BIN, "org", "webhook", org], env=dict(env, CLASSY_WEBHOOK_SECRET=secret), check=True,
                       capture_output=True)
        s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
        run_out = open(os.path.join(data, "run.out"), "w")
        run = subprocess.Popen([BIN, "run", "--listen", f"127.0.0.1:{port}"], env=env, stdout=run_out,
                               stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/webhooks/classy/{org}"
        call(base, "PUT", f"/admin/orgs/{org}/webhook", {"url": url, "secret": secret})

        def export(entity):
            out = sh("export", org, "--entity", entity).stdout
            return [json.loads(l) for l in out.splitlines() if l]

        # 1. Single changes.
        made, seen, pending = {}, {}, set()
        next_at = time.time()
        deadline = None
        while len(made) < CHANGES or pending:
            now = time.time()
            if len(made) < CHANGES and now >= next_at:
                t0 = time.time()
                txn = call(base, "POST", f"/admin/orgs/{org}/transactions",
                           {"status": "success", "total_gross_amount": 10.0, "donation_gross_amount": 10.0})
                made[txn["id"]] = t0
                pending.add(txn["id"])
                next_at = t0 + random.uniform(0.5, 1.5)
                if len(made) == CHANGES:
                    deadline = time.time() + 120
            if pending:
                ids = {r["id"] for r in export("transactions")}
                t = time.time()
                for i in list(pending):
                    if i in ids:
                        seen[i] = t - made[i]
                        pending.discard(i)
            if deadline and time.time() > deadline:
                break
            time.sleep(0.25)
        lat = list(seen.values())
        single = {"changes": CHANGES, "stored": len(seen), "p50_s": round(pct(lat, 50), 2),
                  "p95_s": round(pct(lat, 95), 2), "max_s": round(max(lat), 2)}
        print(f"single changes: {single}", flush=True)

        # 2. Burst of supporter changes; wait until quiet.
        time.sleep(8)
        run_out.flush()
        before = sum(1 for l in open(os.path.join(data, "run.out")) if '"supporters"' in l)
        hooks0 = call(base, "GET", "/admin/webhooks")["counters"]
        touched = call(base, "POST", f"/admin/orgs/{org}/supporters/touch", {"count": BURST})["ids"]
        quiet_since, last = time.time(), None
        while True:
            c = call(base, "GET", "/admin/webhooks")["counters"]
            lines = sum(1 for l in open(os.path.join(data, "run.out")) if '"supporters"' in l)
            state = (c["sent"], lines)
            if state != last:
                last, quiet_since = state, time.time()
            if c["in_flight"] == 0 and time.time() - quiet_since > 12:
                break
            time.sleep(0.5)
        syncs = lines - before
        truth = {r["id"]: ts(r["updated_at"]) for r in call(base, "GET", f"/admin/orgs/{org}/supporters")}
        stored = {r["id"]: r for r in export("supporters")}
        lost = sum(1 for i in touched if i not in stored or ts(stored[i]["updated_at"]) != truth[i])
        burst = {"events": c["sent"] - hooks0["sent"], "syncs_started": syncs, "changes_lost": lost,
                 "retried": c["retried"] - hooks0["retried"]}
        print(f"burst: {burst}", flush=True)

        # 3. Receiver latency, one signed request at a time.
        key = base64.b64decode(secret[len("whsec_"):])
        rtts = []
        for n in range(PROBES):
            body = json.dumps({"type": "supporter.updated", "data": {"id": n, "organization_id": int(org)}}).encode()
            mid, t = f"msg_bench{n}_{os.getpid()}", str(int(time.time()))
            sig = base64.b64encode(hmac.new(key, f"{mid}.{t}.".encode() + body, hashlib.sha256).digest()).decode()
            req = urllib.request.Request(url, method="POST", data=body, headers={
                "Content-Type": "application/json", "svix-id": mid, "svix-timestamp": t,
                "svix-signature": f"v1,{sig}"})
            t0 = time.perf_counter()
            with urllib.request.urlopen(req) as r:
                r.read()
                assert 200 <= r.status < 300, r.status
            rtts.append((time.perf_counter() - t0) * 1000)
        receiver = {"requests": PROBES, "p50_ms": round(pct(rtts, 50), 2), "p99_ms": round(pct(rtts, 99), 2)}
        print(f"receiver: {receiver}", flush=True)
    finally:
        if run:
            run.terminate()
            run.wait()
        sandbox.terminate()
        sandbox.wait()
        subprocess.run(["rm", "-rf", data])
    result = {"single": single, "burst": burst, "receiver": receiver, "debounce_s": 5,
              "machine": {"cores": os.cpu_count()}}
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench-results", "webhooks.json"), "w") as f:
        json.dump(result, f, indent=2)
    checks = [(single["p95_s"] <= 15 and single["stored"] == CHANGES, f"change -> stored p95 {single['p95_s']} s <= 15 s"),
              (burst["syncs_started"] <= 2, f"burst of {BURST}: {burst['syncs_started']} syncs <= 2"),
              (burst["changes_lost"] == 0, f"burst of {BURST}: {burst['changes_lost']} changes lost"),
              (receiver["p99_ms"] <= 50, f"receiver p99 {receiver['p99_ms']} ms <= 50 ms")]
    for ok, what in checks:
        print(f"{'met   ' if ok else 'MISSED'} {what}")


if __name__ == "__main__":
    main()
