#!/usr/bin/env python3
"""`make bench-budget`: how much of one Classy application's budget classy-sync spends, against
the release sandbox with the limit enforced (a fixed one-minute window per application, as
Classy's) and latency on every request, with the release CLI:

  (a) four processes syncing the four entities of one organization at once (one data
      directory: one budget);
  (b) one large organization alone (full sync, each large entity in id slices);
  (c) 20 small organizations with 8 at a time (`classy-sync sync --all --concurrency 8`).

For each: budget used = calls made / calls allowed over the busy time (calls counted by the
sandbox, `by_application`; busy time: from the first call to the last one, polled every 50 ms;
allowed = the limit's average rate × the busy time; target >= 95 %), the same over the whole
wall time (first process started to last one ended, store opening and the aggregate
recompute included), 429 answers (target 0), and for (b) the full sync's wall time /
(calls / budget) (target <= 1.1). Every run repeats the three
scenarios (BENCH_BUDGET_RUNS, default 2). Writes bench-results/budget.json.
"""
import json, os, shutil, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "classy-sync")
SANDBOX_BIN = os.path.join(TARGET, "release", "classy-sandbox")
PER_MINUTE = int(os.environ.get("BENCH_BUDGET_PER_MINUTE", "400"))
LATENCY_MS = int(os.environ.get("BENCH_BUDGET_LATENCY_MS", "200"))
RUNS = int(os.environ.get("BENCH_BUDGET_RUNS", "2"))
ENTITIES = ["supporters", "campaigns", "transactions", "recurring-plans"]

# One organization large enough to keep the budget busy about a minute; 20 small ones.
LARGE = {"orgs": 1, "supporters": 12000, "transactions": 20000, "plans": 3000, "campaigns": 20}
SMALL = {"orgs": 20, "supporters": 300, "transactions": 600, "plans": 60, "campaigns": 5}


class Sandbox:
    def __init__(self, sizes, seed):
        args = [SANDBOX_BIN, "--port", "0", "--seed", str(seed), "--rate-limit", str(PER_MINUTE),
                "--latency-ms", str(LATENCY_MS)]
        for k, v in sizes.items():
            args += [f"--{k}", str(v)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.ready = json.loads(self.proc.stdout.readline())

    def counters(self):
        with urllib.request.urlopen(self.ready["base_url"] + "/admin/counters") as r:
            return json.load(r)

    def calls(self):
        return sum(a["requests"] for a in self.counters()["by_application"].values())

    def close(self):
        self.proc.terminate()
        self.proc.wait()


class CallSpan(threading.Thread):
    """Polls the sandbox's count of API calls every 50 ms: when the first and the last call
    were seen (the busy time of the budget, without process start-up and the aggregate
    recompute after the last page)."""

    def __init__(self, sb):
        super().__init__(daemon=True)
        self.sb, self.first, self.last, self.seen, self.done = sb, None, None, 0, threading.Event()

    def run(self):
        while not self.done.is_set():
            n, now = self.sb.calls(), time.time()
            if n > self.seen:
                self.first = self.first or now
                self.seen, self.last = n, now
            time.sleep(0.05)

    def stop(self):
        self.done.set()
        self.join()
        return (self.last - self.first) if self.first else 0.0


def data_dir(sb):
    app = sb.ready["apps"][0]
    data = tempfile.mkdtemp(prefix="classy-bench-budget-")
    env = dict(os.environ, CLASSY_SYNC_DATA_DIR=data, CLASSY_API_BASE_URL=sb.ready["api_base_url"],
               CLASSY_AUTH_URL=sb.ready["auth_url"], CLASSY_CLIENT_SECRET=app["client_secret"],
               CLASSY_SYNC_ALLOW_DEV_URLS="1", CLASSY_RATE_LIMIT_PER_MINUTE=str(PER_MINUTE))
    env.pop("CLASSY_SYNC_FULL_SYNC_SLICES", None)  # the default (4)
    orgs = [o for a in sb.ready["apps"] for o in a["organizations"]]
    for org in orgs:
        subprocess.run([BIN, "org", "add", str(org), "--name", f"Org {org}", "--client-id", app["client_id"],
                        "--no-verify"], env=env, check=True, stdout=subprocess.DEVNULL)
    return data, env, orgs


def run_all(cmds, env):
    """Starts every command at once; returns the busy wall time and their JSON reports."""
    t0 = time.time()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
    outs = [p.communicate() for p in procs]
    busy = time.time() - t0
    reports = []
    for p, (out, err) in zip(procs, outs):
        if p.returncode != 0:
            sys.exit(f"sync failed ({p.returncode}): {err[-2000:]}")
        doc = json.loads(out)
        if doc["failures"]:
            sys.exit(f"sync failures: {doc['failures'][:3]}")
        reports += doc["runs"]
    return busy, reports


def measure(name, sizes, seed, commands):
    sb = Sandbox(sizes, seed)
    try:
        data, env, orgs = data_dir(sb)
        span = CallSpan(sb)
        span.start()
        wall, reports = run_all(commands(orgs), env)
        busy = span.stop()
        c = sb.counters()
        subprocess.run(["rm", "-rf", data])
    finally:
        sb.close()
    app = next(iter(c["by_application"].values()))
    calls, refused = app["requests"], app["429"]
    allowed = PER_MINUTE * busy / 60.0
    row = {"scenario": name, "busy_s": round(busy, 1), "wall_s": round(wall, 1), "calls": calls,
           "allowed": round(allowed, 1), "budget_used": round(calls / allowed, 3),
           "budget_used_wall": round(calls / (PER_MINUTE * wall / 60.0), 3), "429": refused,
           "records": sum(r["fetched"] for r in reports), "runs": len(reports),
           "full": all(r["mode"] == "full" for r in reports)}
    if name.startswith("b"):
        # The full sync's wall time (process start to end, aggregates included).
        row["time_vs_pages_at_budget"] = round(wall / (calls / (PER_MINUTE / 60.0)), 3)
    return row


def main():
    global BIN, SANDBOX_BIN
    if os.environ.get("BENCH_BUDGET_BIN_DIR"):  # release binaries built already (`make build-cli`)
        BIN, SANDBOX_BIN = (os.path.join(os.environ["BENCH_BUDGET_BIN_DIR"], os.path.basename(b))
                            for b in (BIN, SANDBOX_BIN))
    else:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "classy-sync-cli", "-p", "classy-sandbox"],
                       cwd=ROOT, check=True)
    # Private copies: another checkout sharing the target directory may rebuild them meanwhile.
    bins = tempfile.mkdtemp(prefix="classy-bench-budget-bin-")
    for b in (BIN, SANDBOX_BIN):
        shutil.copy2(b, bins)
    BIN, SANDBOX_BIN = (os.path.join(bins, os.path.basename(b)) for b in (BIN, SANDBOX_BIN))
    rows = []
    for run in range(1, RUNS + 1):
        seed = 100 + run
        a = measure("a: 4 processes, 4 entities of 1 org", LARGE, seed, lambda orgs: [
            [BIN, "sync", str(orgs[0]), "--entity", e, "--full", "--json"] for e in ENTITIES])
        b = measure("b: 1 large org, sliced full sync", LARGE, seed, lambda orgs: [
            [BIN, "sync", str(orgs[0]), "--full", "--json"]])
        c = measure("c: 20 small orgs, 8 at a time", SMALL, seed, lambda orgs: [
            [BIN, "sync", "--all", "--concurrency", "8", "--full", "--json"]])
        for r in (a, b, c):
            r["run"] = run
            rows.append(r)
            print(json.dumps(r), flush=True)
    result = {"per_minute": PER_MINUTE, "latency_ms": LATENCY_MS, "rows": rows,
              "machine": {"cores": os.cpu_count()}}
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench-results", "budget.json"), "w") as f:
        json.dump(result, f, indent=2)

    print(f"\nlimit {PER_MINUTE} a minute per application, {LATENCY_MS} ms per request, {RUNS} runs\n")
    print("| scenario | calls | first → last call s | budget used | whole wall s | budget used over the wall time | 429s | full-sync time ÷ (calls ÷ budget) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in dict.fromkeys(r["scenario"] for r in rows):
        rs = [r for r in rows if r["scenario"] == name]
        span = lambda k, f="{}": (f.format(min(r[k] for r in rs)) if min(r[k] for r in rs) == max(r[k] for r in rs)
                                  else f"{f.format(min(r[k] for r in rs))}–{f.format(max(r[k] for r in rs))}")
        ratio = span("time_vs_pages_at_budget") if "time_vs_pages_at_budget" in rs[0] else "–"
        used = span("budget_used", "{:.1%}").replace("%–", "–")
        used_wall = span("budget_used_wall", "{:.1%}").replace("%–", "–")
        print(f"| {name} | {span('calls')} | {span('busy_s')} | {used} | {span('wall_s')} | {used_wall} | "
              f"{span('429')} | {ratio} |")
    misses = []
    for r in rows:
        if r["budget_used"] < 0.95:
            misses.append(f"{r['scenario']} run {r['run']}: budget used {r['budget_used']:.1%} < 95 %")
        if r["429"] > 0:
            misses.append(f"{r['scenario']} run {r['run']}: {r['429']} 429s")
        if r.get("time_vs_pages_at_budget", 0) > 1.1:
            misses.append(f"{r['scenario']} run {r['run']}: {r['time_vs_pages_at_budget']}× > 1.1×")
    shutil.rmtree(bins, ignore_errors=True)
    print("\n" + ("met    every target" if not misses else "MISSED " + "\nMISSED ".join(misses)))


if __name__ == "__main__":
    main()
