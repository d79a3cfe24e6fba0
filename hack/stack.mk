# Makefile fragment for the local stack (included by the root Makefile).
# Each target delegates to hack/stack; see hack/README-stack.md.
#   make stack-up | stack-down | stack-status | stack-test
#   eval "$(make -s stack-env)"
STACK ?= $(CURDIR)/hack/stack

.PHONY: stack-up stack-down stack-status stack-env stack-seed stack-test

stack-up:
	@$(STACK) up

stack-down:
	@$(STACK) down

stack-status:
	@$(STACK) status

# Prints only `export` lines, so `eval "$(make -s stack-env)"` works; -s keeps
# make from echoing anything else.
stack-env:
	@$(STACK) env

stack-seed:
	@$(STACK) seed $(if $(SMALL),--small,)

stack-test:
	@$(CURDIR)/tests/stack/run.sh
