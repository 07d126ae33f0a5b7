# Confab: `make test` installs the test peers (Debian and npm packages) and runs every test
# with the race detector; `make run` starts Confab on its embedded defaults.
GO ?= go

.PHONY: test test-deps test-short build run vet

test: test-deps vet
	CONFAB_REQUIRE_PEERS=1 $(GO) test -race -timeout 25m ./...

test-deps:
	./scripts/test-deps.sh

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

build:
	$(GO) build -o bin/confab ./cmd/confab

run:
	$(GO) run ./cmd/confab up
