# Tributary's front door. `make test` is the README's test command and what CI runs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK := $(CURDIR)/hack/stack

include hack/stack.mk
-include runner/runner.mk
-include operator/operator.mk

.PHONY: help build test test-unit lint fmt crds demo

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

build: ## Build every binary (debug)
	cargo build --workspace

lint: ## Formatting and clippy, warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

crds: ## Regenerate crds/ from the Rust types
	cargo run -q -p tributary-cli -- crds --out-dir crds

test-unit: ## Unit and offline tests only (no servers)
	cargo test --workspace --lib --bins
	cargo test -p tributary-core -p tributary-cli --tests

# The full suite: lint, bring up (or reuse) the local stack, then every test against real
# servers. Under CI=true a missing server fails the run instead of skipping.
test: lint ## Everything: lint, local stack up, all tests against real servers
	$(STACK) up
	eval "$$($(STACK) env)" && cargo test --workspace --all-targets --no-fail-fast
	eval "$$($(STACK) env)" && $(CURDIR)/tests/stack/run.sh

demo: ## The retail demo end to end (see README)
	@echo "The end-to-end demo arrives with the runner image and a node that runs pods (issue 6)."
	@echo "Today: make stack-up, then: cargo run -p tributary-cli -- validate -f manifests/examples/retail"
