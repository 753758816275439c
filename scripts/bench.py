#!/usr/bin/env python3
"""`make bench`: full sync of one organization with 1,000,000 supporters and 2,000,000
transactions from the sandbox on this machine, sandbox included; the same at a tenth of the
size to show memory stays flat; Classy calls per 1,000 records; an idle incremental round;
then a Mailchimp push of 100,000 consented supporters to the sandbox (contacts/s, calls per
1,000 contacts) and an incremental push after 1 % changed (BENCH_ONLY=mailchimp runs only that;
BENCH_MAILCHIMP_CONSENTED sets its size).

Writes bench-results/sync.json and prints a Markdown table. Sizes can be lowered for a quick
look: BENCH_SUPPORTERS=100000 BENCH_TRANSACTIONS=200000 make bench.
"""
import json, os, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, "release", "classy-sync")
SANDBOX_BIN = os.path.join(TARGET, "release", "classy-sandbox")
SUPPORTERS = int(os.environ.get("BENCH_SUPPORTERS", "1000000"))
TRANSACTIONS = int(os.environ.get("BENCH_TRANSACTIONS", "2000000"))


def start_sandbox(supporters, transactions):
    proc = subprocess.Popen([SANDBOX_BIN, "--port", "0", "--orgs", "1", "--supporters", str(supporters),
                             "--transactions", str(transactions), "--campaigns", "100", "--plans",
                             str(max(100, supporters // 50))], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    t0 = time.time()
    line = proc.stdout.readline()
    if not line:
        sys.exit("the sandbox did not start")
    return proc, json.loads(line), time.time() - t0


def admin(base, path, method="GET", body=None):
    req = urllib.request.Request(base + "/admin" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def run_cli(env, *args):
    """Runs the CLI; returns (seconds, peak RSS in MB of that one process, parsed JSON)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.time()
        proc = subprocess.Popen([BIN, *args], env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        secs = time.time() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"classy-sync {' '.join(args)} failed: {err.read()[-2000:]}")
        text = out.read()
    return secs, usage.ru_maxrss / 1024.0, json.loads(text) if text.strip().startswith("{") else None


def leftovers(data, org):
    """What the store and the secrets file still hold of the organization (all zero after a
    purge): items of its partition, its list entry and purge marker, its secrets."""
    import sqlite3
    db = sqlite3.connect(os.path.join(data, "store.db"))
    pad = f"{int(org):020d}"
    items = db.execute("SELECT COUNT(*) FROM items WHERE pk = ?", (f"ORG#{org}",)).fetchone()[0]
    listed = db.execute("SELECT COUNT(*) FROM items WHERE pk = 'ORGS' AND sk IN (?, ?)",
                        (f"ORG#{pad}", f"PURGE#{pad}")).fetchone()[0]
    db.close()
    with open(os.path.join(data, "secrets.json")) as f:
        secrets = [n for n in json.load(f) if n.startswith(f"classy-sync/{org}/")]
    return {k: v for k, v in {"items": items, "org_list": listed, "secrets": len(secrets)}.items() if v}


def one_size(supporters, transactions):
    sandbox, ready, gen_secs = start_sandbox(supporters, transactions)
    try:
        app = ready["apps"][0]
        org = str(app["organizations"][0])
        data = tempfile.mkdtemp(prefix="classy-bench-")
        env = dict(os.environ, CLASSY_SYNC_DATA_DIR=data, CLASSY_API_BASE_URL=ready["api_base_url"],
                   CLASSY_AUTH_URL=ready["auth_url"], CLASSY_CLIENT_SECRET=app["client_secret"], CLASSY_SYNC_ALLOW_DEV_URLS="1",
                   CLASSY_RATE_LIMIT_PER_MINUTE="0")
        run_cli(env, "org", "add", org, "--name", "Bench", "--client-id", app["client_id"])
        admin(ready["base_url"], "/counters/reset", "POST")
        secs, rss, report = run_cli(env, "sync", org, "--full", "--json")
        calls = admin(ready["base_url"], "/counters")["total"]
        records = sum(r["fetched"] for r in report["runs"])
        # Idle incremental: the first settles the high-water second, the second is measured.
        run_cli(env, "sync", org, "--json")
        admin(ready["base_url"], "/counters/reset", "POST")
        run_cli(env, "sync", org, "--json")
        counters = admin(ready["base_url"], "/counters")
        # A new process asks for a token first; the list calls are what the cursor costs.
        idle_calls = counters["total"] - counters["by_endpoint"].get("oauth2/auth", 0)
        # Analytics and quality read the synced store (no Classy calls).
        donors_s, donors_rss, _ = run_cli(env, "analytics", "donors", org, "--period", "12m", "--json")
        campaigns_s, _, _ = run_cli(env, "analytics", "campaigns", org, "--json")
        quality_s, quality_rss, _ = run_cli(env, "quality", "report", org, "--json")
        db = os.path.getsize(os.path.join(data, "store.db"))
        # Offboarding: the purge of the whole organization, then proof that nothing is left.
        purge_s, purge_rss, purged = run_cli(env, "org", "remove", org, "--purge", "--yes", "--json")
        left = leftovers(data, org)
        if left:
            sys.exit(f"org remove --purge left items behind: {left}")
        subprocess.run(["rm", "-rf", data])
        return {"supporters": supporters, "transactions": transactions, "records": records,
                "sandbox_generation_s": round(gen_secs, 1), "sync_s": round(secs, 2),
                "records_per_s": round(records / secs), "peak_rss_mb": round(rss, 1),
                "classy_calls": calls, "calls_per_1000": round(calls * 1000 / records, 3),
                "idle_incremental_calls": idle_calls, "idle_incremental_calls_per_entity": idle_calls / 4,
                "store_mb": round(db / 1e6), "analytics_donors_s": round(donors_s, 2),
                "analytics_donors_rss_mb": round(donors_rss, 1), "analytics_campaigns_s": round(campaigns_s, 2),
                "quality_report_s": round(quality_s, 2), "quality_report_rss_mb": round(quality_rss, 1),
                "purge_s": round(purge_s, 1), "purge_items": purged["purged"][0]["items"],
                "purge_rss_mb": round(purge_rss, 1), "purge_leftovers": left}
    finally:
        sandbox.terminate()
        sandbox.wait()


MC_CONSENTED = int(os.environ.get("BENCH_MAILCHIMP_CONSENTED", "100000"))


def mailchimp_push():
    """Pushes an organization with BENCH_MAILCHIMP_CONSENTED consented supporters to the
    Mailchimp sandbox: first push (contacts/s, calls per 1,000), then an incremental push after
    1 % of them changed in Classy (calls per 1,000 changed contacts)."""
    # The sandbox gives about 60 % of supporters opt-in and 3 % unusable addresses.
    supporters = int(MC_CONSENTED / 0.58) + 1000
    sandbox, ready, _ = start_sandbox(supporters, supporters)
    try:
        app = ready["apps"][0]
        org = str(app["organizations"][0])
        mc = ready["mailchimp"]
        data = tempfile.mkdtemp(prefix="classy-bench-mc-")
        env = dict(os.environ, CLASSY_SYNC_DATA_DIR=data, CLASSY_API_BASE_URL=ready["api_base_url"],
                   CLASSY_AUTH_URL=ready["auth_url"], CLASSY_CLIENT_SECRET=app["client_secret"], CLASSY_SYNC_ALLOW_DEV_URLS="1",
                   CLASSY_RATE_LIMIT_PER_MINUTE="0", MAILCHIMP_API_KEY=mc["api_key"],
                   MAILCHIMP_API_BASE_URL=mc["api_base_url"])
        run_cli(env, "org", "add", org, "--name", "Bench", "--client-id", app["client_id"])
        run_cli(env, "sync", org, "--full", "--json")
        run_cli(env, "org", "plugin", "add", org, "mailchimp", "--list-id", mc["list_id"])
        admin(ready["base_url"], "/mailchimp/counters/reset", "POST")
        secs, rss, _ = run_push(env, org)
        members = admin(ready["base_url"], f"/mailchimp/lists/{mc['list_id']}/members")["members"]
        pushed = len(members)
        first_counters = admin(ready["base_url"], "/mailchimp/counters")
        first_calls = first_counters["requests"]
        # 1 % of the consented supporters change their name in Classy.
        sups = [s for s in admin(ready["base_url"], f"/orgs/{org}/supporters") if s["opt_in"]]
        changed = max(1, pushed // 100)
        step = max(1, len(sups) // changed)
        for s in sups[::step][:changed]:
            admin(ready["base_url"], f"/orgs/{org}/supporters/{s['id']}", "PATCH",
                  {"first_name": (s.get("first_name") or "") + "x"})
        run_cli(env, "sync", org, "--json")
        admin(ready["base_url"], "/mailchimp/counters/reset", "POST")
        inc_secs, _, inc_report = run_push(env, org)
        inc_sent = sum(r["report"]["sent"] for r in inc_report if r.get("ok"))
        inc_counters = admin(ready["base_url"], "/mailchimp/counters")
        inc_calls = inc_counters["requests"]
        subprocess.run(["rm", "-rf", data])
        return {"consented_pushed": pushed, "push_s": round(secs, 2),
                "contacts_per_s": round(pushed / secs), "peak_rss_mb": round(rss, 1),
                "first_push_calls": first_calls, "first_calls_per_1000": round(first_calls * 1000 / pushed, 3),
                "changed": changed, "incremental_push_s": round(inc_secs, 2),
                "incremental_calls": inc_calls, "incremental_calls_per_1000": round(inc_calls * 1000 / changed, 3),
                "incremental_calls_per_1000_audience": round(inc_calls * 1000 / pushed, 3),
                "incremental_sent": inc_sent, "incremental_batch_floor": -(-inc_sent // 500),
                "first_counters": first_counters, "incremental_counters": inc_counters}
    finally:
        sandbox.terminate()
        sandbox.wait()


def run_push(env, org):
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.time()
        proc = subprocess.Popen([BIN, "push", org, "--json"], env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        secs = time.time() - t0
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"classy-sync push failed: {err.read()[-2000:]} {out.read()[-2000:]}")
        return secs, usage.ru_maxrss / 1024.0, json.loads(out.read())


def print_mailchimp(r):
    print("| Mailchimp push | contacts | seconds | contacts/s | calls | calls / 1,000 contacts |")
    print("|---|---|---|---|---|---|")
    print(f"| first push | {r['consented_pushed']:,} | {r['push_s']} | {r['contacts_per_s']:,} | "
          f"{r['first_push_calls']} | {r['first_calls_per_1000']} |")
    print(f"| incremental, 1 % changed | {r['changed']:,} | {r['incremental_push_s']} | - | "
          f"{r['incremental_calls']} | {r['incremental_calls_per_1000']} per 1,000 changed, "
          f"{r['incremental_calls_per_1000_audience']} per 1,000 in the audience |")
    print(f"{'met   ' if r['first_calls_per_1000'] <= 2.1 else 'MISSED'} <= 2.1 Mailchimp calls per 1,000 contacts (first push)")
    # 500 members per batch: n changed contacts need at least ceil(n / 500) calls.
    print(f"{'met   ' if r['incremental_calls_per_1000'] <= 2.1 else 'MISSED'} <= 2.1 Mailchimp calls per 1,000 changed contacts "
          f"(incremental; {r['incremental_sent']:,} members sent, the batch floor alone is "
          f"{r['incremental_batch_floor']} calls = {r['incremental_batch_floor'] * 1000 / r['changed']:.3f})")
    print(f"{'met   ' if r['incremental_calls_per_1000_audience'] <= 2.1 else 'MISSED'} <= 2.1 Mailchimp calls per 1,000 contacts in the audience (incremental)")


def main():
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "classy-sync-cli", "-p", "classy-sandbox"], cwd=ROOT, check=True)
    if os.environ.get("BENCH_ONLY") == "mailchimp":
        r = mailchimp_push()
        os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
        with open(os.path.join(ROOT, "bench-results", "mailchimp.json"), "w") as f:
            json.dump(r, f, indent=2)
        print_mailchimp(r)
        return
    small = one_size(SUPPORTERS // 10, TRANSACTIONS // 10)
    large = one_size(SUPPORTERS, TRANSACTIONS)
    growth = large["peak_rss_mb"] / small["peak_rss_mb"] - 1
    result = {"machine": {"cores": os.cpu_count()}, "small": small, "large": large,
              "memory_growth_pct": round(growth * 100, 1)}
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench-results", "sync.json"), "w") as f:
        json.dump(result, f, indent=2)
    print("| run | records | sync s | records/s | peak RSS MB | Classy calls / 1,000 | idle incremental calls / entity |")
    print("|---|---|---|---|---|---|---|")
    for name, r in (("1/10 size", small), ("full size", large)):
        print(f"| {name} | {r['records']:,} | {r['sync_s']} | {r['records_per_s']:,} | {r['peak_rss_mb']} | "
              f"{r['calls_per_1000']} | {r['idle_incremental_calls_per_entity']} |")
    print(f"memory growth from 1/10 to full size: {result['memory_growth_pct']} %")
    for name, r in (("1/10 size", small), ("full size", large)):
        print(f"{name}: analytics donors {r['analytics_donors_s']} s ({r['analytics_donors_rss_mb']} MB), "
              f"campaigns {r['analytics_campaigns_s']} s, quality report {r['quality_report_s']} s "
              f"({r['quality_report_rss_mb']} MB)")
        print(f"{name}: org remove --purge {r['purge_items']:,} items in {r['purge_s']} s "
              f"({r['purge_rss_mb']} MB), left behind: {r['purge_leftovers'] or 'nothing'}")
    targets = [("throughput >= 25,000 records/s", large["records_per_s"] >= 25000),
               ("peak memory <= 100 MB", large["peak_rss_mb"] <= 100),
               ("memory growth <= 10 %", growth <= 0.10),
               ("<= 10.2 calls per 1,000 records", large["calls_per_1000"] <= 10.2),
               ("1 call per entity when idle", large["idle_incremental_calls"] == 4),
               ("analytics donors <= 1 s", large["analytics_donors_s"] <= 1),
               ("quality report <= 5 s", large["quality_report_s"] <= 5)]
    for name, ok in targets:
        print(f"{'met   ' if ok else 'MISSED'} {name}")
    mc = mailchimp_push()
    with open(os.path.join(ROOT, "bench-results", "mailchimp.json"), "w") as f:
        json.dump(mc, f, indent=2)
    print_mailchimp(mc)


if __name__ == "__main__":
    main()
