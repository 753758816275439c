# classy-sync: `make run` runs the demo locally, `make test` runs every check.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: help setup build run test test-rust lint fmt contract bench bench-health bench-webhooks bench-tenants bench-budget clean lint-infra build-cli deploy lambda-metrics test-lambda build-times

help:
	@echo "make run    - build, start the Classy sandbox, onboard 3 demo organizations, full + incremental sync, a webhook-triggered sync"
	@echo "make test   - fmt, clippy, every Rust test (sandbox, moto), Classy and Mailchimp contracts, infra lint, Lambda invoke test"
	@echo "make bench  - the 1M supporters / 2M transactions benchmark (numbers into bench-results/)"
	@echo "make bench-health - classy-sync health over 100 sandbox organizations (<= 2 s)"
	@echo "make bench-webhooks - webhook -> stored latency, a 1,000-event burst, receiver p99"
	@echo "make bench-tenants - org import of 1,000 organizations, with and without verification"
	@echo "make bench-budget - share of the Classy budget used against the limited sandbox (4 processes, 1 large org in slices, 20 orgs)"
	@echo "make build [ARCH=--x86-64] / deploy / lint-infra / lambda-metrics / build-times - the AWS stack (docs/deploy.md)"

# Python tools in a project-local virtual environment.
$(VENV)/.installed: requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

setup: $(VENV)/.installed

# The CLI (with the sandbox) for local runs.
build-cli:
	$(CARGO) build --release --locked -p classy-sync-cli -p classy-sandbox

# Every Lambda function with cargo-lambda, and the CLI. arm64 by default (what the stack
# deploys); these build machines have only the x86_64 standard library: ARCH=--x86-64.
# The functions favour size (opt-level s, fat LTO, one codegen unit); `sam build` in
# `make deploy` gets the same settings.
ARCH ?= --arm64
LAMBDA_PROFILE := CARGO_PROFILE_RELEASE_OPT_LEVEL=s CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
build: setup build-cli
	$(LAMBDA_PROFILE) PATH="$(abspath $(VENV))/bin:$$PATH" cargo lambda build --release --locked $(ARCH) -p classy-sync-functions

run: setup build-cli
	PYTHON=$(PY) bash scripts/demo.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	CARGO=$(CARGO) bash scripts/check-layers.sh

test-rust:
	PYTHON=$(abspath $(PY)) $(CARGO) test --locked --workspace -- --test-threads 2

contract: setup
	bash scripts/contract.sh $(PY)

lint-infra: setup
	bash scripts/lint-infra.sh $(VENV)/bin

deploy: setup
	cd infra && $(LAMBDA_PROFILE) PATH="$(abspath $(VENV))/bin:$$PATH" sam build && PATH="$(abspath $(VENV))/bin:$$PATH" sam deploy

lambda-metrics: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) scripts/lambda_metrics.py

# Clean and incremental release build times of git refs: make build-times REFS="6dc2eb9 HEAD"
build-times:
	CARGO=$(CARGO) bash scripts/build_times.sh $(REFS)

# The real Lambda runtime path: cargo lambda watch + invoke with the sample events.
test-lambda: setup
	bash scripts/lambda-invoke-test.sh $(PY)

test: setup lint test-rust contract lint-infra test-lambda

bench: setup build-cli
	$(PY) scripts/bench.py
	$(PY) scripts/bench_health.py
	$(PY) scripts/bench_webhooks.py
	$(PY) scripts/bench_tenants.py
	$(PY) scripts/bench_budget.py

# Webhooks: change -> stored p50/p95, a burst of 1,000 events, the receiver's p99.
bench-webhooks: setup
	$(PY) scripts/bench_webhooks.py

# Tenants: org import of 1,000 organizations (the purge is timed by scripts/bench.py).
bench-tenants: setup build-cli
	$(PY) scripts/bench_tenants.py

bench-health: setup
	$(PY) scripts/bench_health.py

# The Classy budget: calls made / allowed and 429s against the sandbox's enforced limit with
# latency (a: 4 processes on one org's 4 entities, b: one large org in slices, c: 20 orgs).
bench-budget: setup build-cli
	$(PY) scripts/bench_budget.py

clean:
	$(CARGO) clean
	rm -rf $(VENV) bench-results
