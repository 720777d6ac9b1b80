# Rocketry: the one entry point for building, running and testing.
GO        ?= go
BIN       ?= bin/rocketry
PKGS      ?= ./...
FUZZTIME  ?= 30s
# Race detector on by default in CI-facing targets; RACE= to disable locally.
RACE      ?= -race

.PHONY: all build run test test-race test-short fuzz bench lint clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/rocketry

# Starts NameServer + Broker + Proxy (local mode) + HTTP in one process, data in ./rocketry-data.
run: build
	./$(BIN) standalone --data-dir ./rocketry-data

# The README's test command. Runs every package's tests (unit, integration with the official
# clients, crash tests with real processes) plus a short pass over each fuzz seed corpus.
test: lint build
	$(GO) test $(RACE) -count=1 -timeout 30m $(PKGS)

test-race:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Runs each fuzz target for FUZZTIME (bounded). Seeds live in testdata/fuzz/.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@# Design rule (reliability H2): no server package may shell out.
	@if grep -rln '"os/exec"' --include='*.go' internal cmd 2>/dev/null | grep -v '_test.go' ; then \
	  echo "os/exec imported outside tests"; exit 1; fi

clean:
	rm -rf bin
