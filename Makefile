# The two commands of the README: `make run` and `make test`. Both install what is missing.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: run test watch build lint fmt bench bench-ui check

## Build a release and serve it on http://127.0.0.1:3000 (embedded store in ./data, admin/admin).
run:
	scripts/setup-tools.sh release
	cargo leptos build --release --split
	$(TARGET_DIR)/release/idra-server --data-dir ./data --site-root target/site

## Everything CI runs: fmt, clippy, Rust tests (etcd for real), Playwright in Chromium.
test:
	scripts/setup-tools.sh
	scripts/setup-test-deps.sh
	scripts/test.sh

## Development server that rebuilds and reloads on edits.
watch:
	scripts/setup-tools.sh
	cargo leptos watch --split

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

## Idra vs Sling vs a raw COPY pipe on the local Postgres (rows/s, ratios), then every destination on 100k rows.
bench:
	bench/run.sh

## 1,000 syncs in the store: p50/p99 of the Dashboard and Syncs pages, and the release wasm sizes.
bench-ui:
	bench/ui.sh

## The correctness checker alone, long: SEED=n SECS=s (default a random seed and 30 minutes).
## Prints per source, destination and mode what the README claims and whether it held.
check:
	scripts/start-databases.sh
	IDRA_CHECK_SEED=$${SEED:-$$RANDOM} IDRA_CHECK_SECS=$${SECS:-1800} \
	  cargo test -p idra-agent --test checker sources_and_destinations_agree_after_faults -- --nocapture
