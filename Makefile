# blockmix — see README.md.
GO        ?= go
BIN       := bin/blockmix
REPO      ?= $(CURDIR)/.blockmix-repo
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build run test bench lint fuzz clean soak hostile

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

# The long forms: 20 rounds of random faults on eight daemons
# (BLOCKMIX_FAULT_SEED=N replays a run), then 100 fresh nodes that each
# get a 171 MiB file from four others, then the want-list flood of the
# adversary suite for 90 s, cut streams coming back, then 3000 power cuts
# of the block store (BLOCKMIX_POWERCUT_SEED=N replays one).
soak: build
	BLOCKMIX_SOAK=20 $(GO) test -count=1 -run TestFaultInjection -v -timeout 60m ./cmd/blockmix
	BLOCKMIX_GET_SOAK=100 $(GO) test -count=1 -run TestFreshNodesGet -v -timeout 60m ./cmd/blockmix
	BLOCKMIX_HOSTILE_SOAK=90s $(GO) test -count=1 -run TestHostileWantFlood -v -timeout 20m ./cmd/blockmix
	BLOCKMIX_POWERCUT_ROUNDS=3000 $(GO) test -count=1 -run TestPowerCut -timeout 60m ./blocks

# The adversary suite alone (cmd/blockmix/hostile_test.go): a hostile node
# attacks real daemons; each test logs its figure as "attack NAME: …",
# and those lines are repeated at the end. The exit status is go test's.
hostile:
	@log=$$(mktemp); \
	$(GO) test -count=1 -run '^TestHostile' -v -timeout 10m ./cmd/blockmix >$$log 2>&1; s=$$?; \
	cat $$log; echo; echo "the figures:"; grep -o 'attack [^ ]*: .*' $$log; rm -f $$log; exit $$s

# gofmt, go vet and staticcheck; CI runs it before the tests.
lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt would change:"; gofmt -l .; false)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

# A run of every fuzz target, bounded by a count of executions, not by time:
# with a duration (-fuzztime 5s), go1.26's fuzz coordinator can fail a
# target with a bare "context deadline exceeded" as the time runs out, with
# no failing input (go.dev/issue/75804, fixed in go1.27). Each target's
# count is about what it runs in 5 s on 2 cores; FUZZ_SCALE multiplies them
# (6, the default, is about 30 s a target; CI runs 1).
FUZZ_SCALE ?= 6
FUZZ_TARGETS := recipe:FuzzParse:200000 recipe:FuzzDecodeNode:200000 \
	recipe:FuzzDecodeFolder:250000 recipe:FuzzCleanEntryName:150000 \
	recipe:FuzzParseFolderPath:150000 mixer:FuzzMixRoundTrip:40000 \
	recipe:FuzzPutOpen:30000 recipe:FuzzOpenSealed:75000 net:FuzzReadFrame:30000 \
	blocks/erasure:FuzzDecodeManifest:250000
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$$(( $${rest#*:} * $(FUZZ_SCALE) )); \
		echo "fuzz $$fn ($$pkg, $${n} runs)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $${n}x ./$$pkg; \
	done

# Static release binaries for the machines a donor runs on: no cgo, no
# paths of this machine, no symbol tables. dist/ gets one binary per target
# and SHA256SUMS; each binary's size is printed.
RELEASE_TARGETS := linux-amd64 linux-arm64 linux-armv7

.PHONY: release
release:
	rm -rf dist
	mkdir -p dist
	@set -e; for t in $(RELEASE_TARGETS); do \
		case $$t in \
		linux-amd64) arch=amd64; arm= ;; \
		linux-arm64) arch=arm64; arm= ;; \
		linux-armv7) arch=arm;   arm=7 ;; \
		esac; \
		echo "go build  dist/blockmix-$$t  (GOOS=linux GOARCH=$$arch$${arm:+ GOARM=$$arm})"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch GOARM=$$arm GOAMD64=v1 GOARM64=v8.0 \
			$(GO) build -trimpath -ldflags "-s -w" -o dist/blockmix-$$t ./cmd/blockmix; \
	done
	cd dist && if command -v sha256sum >/dev/null 2>&1; then sha256sum blockmix-linux-*; \
		else shasum -a 256 blockmix-linux-*; fi > SHA256SUMS
	@set -e; for f in dist/blockmix-linux-*; do \
		if command -v file >/dev/null 2>&1 && ! file $$f | grep -q 'statically linked'; then \
			echo "$$f is not statically linked: $$(file -b $$f)" >&2; exit 1; \
		fi; \
		wc -c < $$f | awk -v f=$$f '{ printf "%-26s %9d bytes  %4.1f MiB\n", f, $$1, $$1 / 1048576 }'; \
	done

clean:
	rm -rf bin dist
