# Confab: `make test` installs the test peers (Debian and npm packages) and runs every test
# with the race detector, fuzzes every fuzz target for 15 s, then runs govulncheck; `make run`
# starts Confab on its embedded defaults.
GO ?= go
# The toolchain every target builds with (scripts/env.sh says why).
export GOTOOLCHAIN := $(shell . ./scripts/env.sh && echo $$GOTOOLCHAIN)

.PHONY: test test-deps test-short build run vet vuln

test: test-deps vet
	CONFAB_REQUIRE_PEERS=1 $(GO) test -race -timeout 25m ./...
	./scripts/fuzz.sh 15s
	./scripts/govulncheck.sh

test-deps:
	./scripts/test-deps.sh

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

vuln:
	./scripts/govulncheck.sh

# -buildvcs=auto: `confab version` names the commit (this machine's GOFLAGS may turn it off).
build:
	$(GO) build -buildvcs=auto -o bin/confab ./cmd/confab

run:
	$(GO) run ./cmd/confab up
