# Makefile fragment for the operator (included by the root Makefile).
#   make operator-build | operator-test-unit | operator-test | operator-lint | operator-run | bench-operator
# Integration tests and the benchmark need the local stack: `make stack-up`.
OPERATOR_TARGET_DIR ?= $(CURDIR)/target/operator
OPERATOR_CARGO = CARGO_TARGET_DIR=$(OPERATOR_TARGET_DIR) cargo
STACK_ENV = eval "$$($(CURDIR)/hack/stack env)"

.PHONY: operator-build operator-test-unit operator-test operator-lint operator-run bench-operator

operator-build: ## Build the tributary-operator binary (release)
	$(OPERATOR_CARGO) build --release -p tributary-operator

operator-test-unit: ## Unit tests of the operator's decisions (no servers)
	$(OPERATOR_CARGO) test -p tributary-operator --lib

operator-test: ## Operator unit and integration tests against the local stack's API server
	$(STACK_ENV) && $(OPERATOR_CARGO) test -p tributary-operator

operator-lint: ## fmt and clippy for the operator
	$(OPERATOR_CARGO) fmt -p tributary-operator -- --check
	$(OPERATOR_CARGO) clippy -p tributary-operator --all-targets -- -D warnings

operator-run: ## Run the operator against the local stack (host network for its data services)
	$(STACK_ENV) && $(OPERATOR_CARGO) run -p tributary-operator -- --host-network --leader-elect=false --log-format text

bench-operator: ## Benchmark: 1,000 Pipelines x 20 tasks against the local stack (BENCH_PIPELINES=… to scale)
	$(STACK_ENV) && $(OPERATOR_CARGO) bench -p tributary-operator --bench operator
