#!/usr/bin/env python3
"""`make bench-tenants`: `org import` of 1,000 organizations into an empty local data
directory, with `--no-verify` (target <= 10 s) and with every credential verified against the
sandbox at the default Classy budget (1,800 requests a minute), several runs each.

The purge of the 1,000,000-supporter organization is measured by `make bench`
(scripts/bench.py), which builds that organization anyway.

Writes bench-results/tenants.json and prints a Markdown table. BENCH_TENANTS sets the number
of organizations, BENCH_RUNS the runs per case.
"""
import json, os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "classy-sync")
SANDBOX_BIN = os.path.join(TARGET, "release", "classy-sandbox")
TENANTS = int(os.environ.get("BENCH_TENANTS", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def start_sandbox(orgs):
    proc = subprocess.Popen([SANDBOX_BIN, "--port", "0", "--orgs", str(orgs), "--supporters", "1",
                             "--transactions", "1", "--campaigns", "1", "--plans", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line:
        sys.exit("the sandbox did not start")
    return proc, json.loads(line)


def write_csv(path, app):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("classy_org_id,name,client_id,client_secret,timezone\n")
        for i, org in enumerate(app["organizations"]):
            f.write(f"{org},Nonprofit {i + 1},{app['client_id']},{app['client_secret']},America/Chicago\n")


def import_once(env, csv, *flags):
    data = tempfile.mkdtemp(prefix="classy-bench-tenants-")
    env = dict(env, CLASSY_SYNC_DATA_DIR=data)
    t0 = time.time()
    r = subprocess.run([BIN, "org", "import", csv, "--json", *flags], env=env, capture_output=True, text=True)
    secs = time.time() - t0
    if r.returncode != 0:
        sys.exit(f"org import failed: {r.stderr[-2000:]}")
    out = json.loads(r.stdout)
    listed = json.loads(subprocess.run([BIN, "org", "list", "--json"], env=env, capture_output=True,
                                       text=True, check=True).stdout)
    subprocess.run(["rm", "-rf", data])
    if out["created"] != TENANTS or len(listed) != TENANTS:
        sys.exit(f"expected {TENANTS} organizations, got {out['created']} created / {len(listed)} listed")
    return secs


def main():
    sandbox, ready = start_sandbox(TENANTS)
    try:
        app = ready["apps"][0]
        if len(app["organizations"]) != TENANTS:
            sys.exit("the sandbox application does not own every organization")
        work = tempfile.mkdtemp(prefix="classy-bench-tenants-csv-")
        csv = os.path.join(work, "orgs.csv")
        write_csv(csv, app)
        env = dict(os.environ, CLASSY_API_BASE_URL=ready["api_base_url"], CLASSY_AUTH_URL=ready["auth_url"],
                   CLASSY_SYNC_ALLOW_DEV_URLS="1", CLASSY_RATE_LIMIT_PER_MINUTE="1800")
        env.pop("CLASSY_CLIENT_SECRET", None)
        no_verify = [import_once(env, csv, "--no-verify") for _ in range(RUNS)]
        verified = [import_once(env, csv) for _ in range(RUNS)]
        subprocess.run(["rm", "-rf", work])
    finally:
        sandbox.terminate()
        sandbox.wait()
    result = {"organizations": TENANTS, "runs": RUNS,
              "import_no_verify_s": [round(s, 2) for s in no_verify],
              "import_verified_s": [round(s, 2) for s in verified],
              "classy_rate_limit_per_minute": 1800}
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench-results", "tenants.json"), "w") as f:
        json.dump(result, f, indent=2)
    print("| case | organizations | seconds (min–max over %d runs) |" % RUNS)
    print("|---|---|---|")
    print(f"| `org import --no-verify` | {TENANTS:,} | {min(no_verify):.2f}–{max(no_verify):.2f} |")
    print(f"| `org import` (verified, 1,800/min) | {TENANTS:,} | {min(verified):.2f}–{max(verified):.2f} |")


if __name__ == "__main__":
    main()
