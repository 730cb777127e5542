# blockmix — see README.md.
GO        ?= go
BIN       := bin/blockmix
REPO      ?= $(CURDIR)/.blockmix-repo
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build run test bench lint fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/blockmix

# Build and run a local node on $(REPO): its web page and API on
# http://127.0.0.1:7788. Ctrl-C stops it.
run: build
	@echo "blockmix is built: $(BIN)   (repo: $(REPO))"
	@echo "open the web page: http://127.0.0.1:7788/"
	@echo "or, in another terminal:"
	@echo "  put a file:    $(BIN) --repo $(REPO) put README.md"
	@echo "  get it back:   $(BIN) --repo $(REPO) get -o /tmp/README.copy 'blockmix:…'"
	@echo "  what is there: $(BIN) --repo $(REPO) files"
	@echo
	$(BIN) --repo $(REPO) daemon --listen /ip4/127.0.0.1/tcp/4001

# Everything the tests need, then all the tests (vet, then go test -race).
# The web page's tests drive Chromium: .ci/deps installs Debian's package
# when it is missing.
test:
	./.ci/deps
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
