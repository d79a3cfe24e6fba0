# Tributary's front door. `make test` is the README's test command and what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK := $(CURDIR)/hack/stack

include hack/stack.mk
-include runner/runner.mk
-include operator/operator.mk
include charts/charts.mk

.PHONY: help build test test-unit lint fmt crds demo

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## Build every binary (debug)
	cargo build --workspace

lint: ## Formatting and clippy, warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

crds: ## Regenerate crds/ from the Rust types, then the chart's copies and the install bundle
	cargo run -q -p tributary-cli -- crds --out-dir crds
	$(CURDIR)/tests/deploy/render.sh

test-unit: ## Unit and offline tests only (no servers)
	cargo test --workspace --lib --bins
	cargo test -p tributary-core -p tributary-cli --tests

# The full suite: lint, bring up (or reuse) the local stack and node, then every suite
# against real servers (tests/all.sh: cargo tests, stack, node, end to end, deployment).
# Under CI=true a missing server fails the run instead of skipping.
test: lint ## Everything: lint, local stack up, all tests against real servers
	$(STACK) up
	$(CURDIR)/tests/all.sh

demo: ## The retail demo end to end: stack, node, images, operator, kubectl apply, one run, report
	$(CURDIR)/hack/demo
