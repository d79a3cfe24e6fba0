# Helm chart, install manifests and Argo CD files (issue 7). Included from the root Makefile:
#   include charts/charts.mk
# Needs hack/helm (builds Helm once into ~/.cache/tributary/helm/<version>/, ~6 min cold).

HELM ?= $(CURDIR)/hack/helm
CHART := $(CURDIR)/charts/tributary

.PHONY: helm manifests manifests-check chart-lint chart-test deploy-test

helm: ## Build (once) the pinned Helm into ~/.cache/tributary/helm
	$(HELM) --build

manifests: ## Re-render the chart's CRD copies, manifests/install and the Argo CD snippets
	$(CURDIR)/tests/deploy/render.sh

manifests-check: ## Fail if a generated deployment file differs from a fresh render
	$(CURDIR)/tests/deploy/render.sh --check

chart-lint: ## helm lint --strict with every values file in charts/tributary/ci
	@set -e; for f in $(CHART)/ci/*-values.yaml; do \
	  echo "helm lint --strict -f $${f##*/}"; $(HELM) lint --strict $(CHART) -f $$f; done

# Lua health checks and static checks (no server), then everything against the real API
# server (and node, for the install test). This is the line `make test` should run.
chart-test: ## Deployment tests: cargo tests of tests/deploy, then tests/deploy/run.sh on the stack
	cargo test -p tributary-deploy-tests
	$(STACK) up
	$(CURDIR)/tests/deploy/run.sh

deploy-test: ## Only tests/deploy/run.sh (stack already up)
	$(CURDIR)/tests/deploy/run.sh
