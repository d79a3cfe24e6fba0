# Runner targets, included from the root Makefile.
#   make bench         runner benchmarks against same-run baselines (needs `./hack/stack up`)
#   make runner-test   runner unit and integration tests (integration needs the stack's env)
#   make runner-lint   rustfmt and clippy of the runner

RUNNER_TARGET_DIR ?= $(CURDIR)/target/runner-dev

.PHONY: bench runner-test runner-lint

bench:
	CARGO_TARGET_DIR=$(RUNNER_TARGET_DIR) runner/bench/bench.sh

runner-test:
	eval "$$(./hack/stack env)" && CARGO_TARGET_DIR=$(RUNNER_TARGET_DIR) cargo test -p tributary-runner

runner-lint:
	cargo fmt -p tributary-runner --check
	CARGO_TARGET_DIR=$(RUNNER_TARGET_DIR) cargo clippy -p tributary-runner --all-targets -- -D warnings
