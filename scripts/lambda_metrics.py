#!/usr/bin/env python3
"""Measures each Lambda function as deployed: the zipped bootstrap's size and the init time
from process start to its first poll of the Lambda runtime API (a local stand-in that only
records when it is first asked for an invocation).

Usage: python3 scripts/lambda_metrics.py [--no-build]   (needs cargo-lambda; `make lambda-metrics`)
  --no-build  measure the bootstraps already built under $CARGO_TARGET_DIR/lambda (another
              checkout's, to compare before and after a change)
Writes bench-results/lambda.json and prints a Markdown table.
"""
import http.server, json, os, shutil, statistics, subprocess, sys, threading, time, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUNCTIONS = ["dispatch", "sync-worker", "plugin-worker", "health-check", "alert", "report"]
RUNS = 7


class FirstPoll(http.server.BaseHTTPRequestHandler):
    polled = None

    def do_GET(self):
        if "/runtime/invocation/next" in self.path and FirstPoll.polled is None:
            FirstPoll.polled = time.perf_counter()
        # Never answer: the function stays parked on its first poll until it is killed.
        time.sleep(5)

    def log_message(self, *args):
        pass


def init_time(binary):
    FirstPoll.polled = None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FirstPoll)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ,
               AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}",
               AWS_LAMBDA_FUNCTION_NAME="measure", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="AKIDMEASURE", AWS_SECRET_ACCESS_KEY="measure",
               AWS_EC2_METADATA_DISABLED="true",
               CLASSY_SYNC_TABLE="classy-sync", CLASSY_SYNC_QUEUE_URL="http://127.0.0.1:1/q",
               CLASSY_SYNC_DLQ_URL="http://127.0.0.1:1/dlq", CLASSY_SYNC_EVENT_BUS="classy-sync")
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while FirstPoll.polled is None and proc.poll() is None and time.perf_counter() - start < 10:
        time.sleep(0.0005)
    proc.kill()
    err = proc.communicate()[1].decode(errors="replace")
    server.shutdown()
    if FirstPoll.polled is None:
        sys.exit(f"{binary} never polled the runtime API: {err[-1500:]}")
    return (FirstPoll.polled - start) * 1000


# Size over speed for the functions: their time goes to waiting on Classy and AWS, and a
# smaller bootstrap loads faster. The Makefile's `build` sets the same.
LAMBDA_PROFILE = {"CARGO_PROFILE_RELEASE_OPT_LEVEL": "s", "CARGO_PROFILE_RELEASE_LTO": "fat",
                  "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "1"}


def main():
    os.environ.update({k: os.environ.get(k, v) for k, v in LAMBDA_PROFILE.items()})
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    if "--no-build" not in sys.argv[1:]:
        cmd = ["cargo", "lambda", "build", "--release", "--x86-64", "--compiler", "cargo",
               "-p", "classy-sync-functions"]
        subprocess.run(cmd, cwd=ROOT, check=True)
    results = {}
    for f in FUNCTIONS:
        bootstrap = os.path.join(target, "lambda", f, "bootstrap")
        zpath = os.path.join(target, "lambda", f, "bootstrap.zip")
        if not os.path.exists(bootstrap):  # built with --output-format zip: take the binary
            shutil.copy2(os.path.join(target, "x86_64-unknown-linux-gnu", "release", f), bootstrap)
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(bootstrap, "bootstrap")
        times = [init_time(bootstrap) for _ in range(RUNS)]
        results[f] = {"zip_bytes": os.path.getsize(zpath), "binary_bytes": os.path.getsize(bootstrap),
                      "init_ms_median": round(statistics.median(times), 1),
                      "init_ms_max": round(max(times), 1)}
    os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench-results", "lambda.json"), "w") as fh:
        json.dump(results, fh, indent=2)
    print("| function | zipped bootstrap | binary | init to first poll (median / max of 7) |")
    print("|---|---|---|---|")
    for f, r in results.items():
        print(f"| {f} | {r['zip_bytes'] / 1e6:.2f} MB | {r['binary_bytes'] / 1e6:.2f} MB | "
              f"{r['init_ms_median']} / {r['init_ms_max']} ms |")
    for f, r in results.items():
        ok = r["zip_bytes"] <= 8e6 and r["init_ms_median"] <= 50
        print(f"{'met   ' if ok else 'MISSED'} {f}: zip <= 8 MB and init <= 50 ms")


if __name__ == "__main__":
    main()
