# blockmix — see README.md.
GO        ?= go
BIN       := bin/blockmix
REPO      ?= $(CURDIR)/.blockmix-repo
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build run test bench lint fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/blockmix

# For now: build, then show how to put and get with a local repo (the
# daemon and its web page come with the network).
run: build
	@echo "blockmix is built: $(BIN)   (repo: $(REPO))"
	@echo
	@echo "  put a file:    $(BIN) --repo $(REPO) put README.md"
	@echo "  get it back:   $(BIN) --repo $(REPO) get -o /tmp/README.copy 'blockmix:…'"
	@echo "  what is there: $(BIN) --repo $(REPO) stat"
	@if [ -d $(REPO)/index ]; then echo; $(BIN) --repo $(REPO) stat; fi

# Everything the tests need, then all the tests (vet, then go test -race).
test:
	$(GO) mod download
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# Benchmarks with their baselines in the same run (cp+sync, cat, raw file
# writes). BENCH_SIZE sets the big file (default 1 GiB).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && false)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# A short run of every fuzz target.
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./recipe
	$(GO) test -run '^$$' -fuzz FuzzDecodeNode -fuzztime 30s ./recipe
	$(GO) test -run '^$$' -fuzz FuzzMixRoundTrip -fuzztime 30s ./mixer
	$(GO) test -run '^$$' -fuzz FuzzPutOpen -fuzztime 30s ./recipe
	$(GO) test -run '^$$' -fuzz FuzzReadFrame -fuzztime 30s ./net

clean:
	rm -rf bin
