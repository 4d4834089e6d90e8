# Makefile for PyKV. `make check` is the loop a change runs in under a
# minute (layout, format, vet, staticcheck, templ output, race tests of every package
# that needs no browser); `make test` is everything CI runs (see .ci/run),
# layer by layer, and installs what it needs first, so it works on a fresh
# Debian machine run as root.

GO     ?= go
GOPATH := $(shell $(GO) env GOPATH)
GOROOT := $(shell $(GO) env GOROOT)

# Tools installed with `go install` land in GOPATH/bin.
export PATH := $(GOPATH)/bin:$(PATH)

# apt-get needs root; CI runs as root, a developer machine may need sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# The browser the e2e tests drive, and the Playwright driver folder that
# playwright-go expects (package/cli.js plus a node executable). The driver
# is playwright-core from node_modules, pinned in package-lock.json; its
# version must match the playwright-go version in go.mod (1.52.0 for v0.5200.1).
CHROMIUM := /usr/bin/chromium
DRIVER   := e2e/.driver
NPM_STAMP := node_modules/.pykv-npm-ci

# The WebAssembly build of the engine, served to the browser by the web server.
WASM_DIR := static/wasm
# Build the wasm only once ./wasm holds Go code (test files alone do not count).
HAVE_WASM := $(filter-out %_test.go,$(wildcard wasm/*.go))

# templ and staticcheck are pinned by the `tool` lines of go.mod (so templ's
# generator and the github.com/a-h/templ runtime the web package imports are
# one version) and run with `go tool`.
TEMPL_FILES := $(shell find . -name '*.templ' -not -path './node_modules/*' -not -path './.git/*')

# The packages whose tests need neither a browser nor the built binary:
# everything but e2e/. `make check` runs them.
CHECK_PKGS = $(shell $(GO) list ./... | grep -v '/e2e$$')
# GO_DIRS are the folders gofmt checks (node_modules and the driver hold none).
GO_DIRS = $(shell $(GO) list -f '{{.Dir}}' ./...)
# CHECK_TESTFLAGS: `make check` runs the crash suites in short mode
# (TestDB_PowerLoss with one seed per crash point instead of ten,
# TestDB_Kill9 with 5 cycles instead of 25) to stay under a minute; `make
# test` runs check with CHECK_TESTFLAGS empty, so every test runs in full.
CHECK_TESTFLAGS ?= -short
# TEST_P is how many packages' tests run at once. Their tests spend most of
# their time waiting (fsyncs, timers, child processes, raft elections), so
# four test binaries keep the two cores busier than go test's default of
# one per core: test-go took 25 s instead of 49 s (2026-12-03, load 4-5).
TEST_P ?= 4

# Short fuzz runs done by `make test`: space-separated package:FuzzName pairs,
# package relative to the repo root, e.g. `persist/codec:FuzzDecodeRecord`.
FUZZ_TARGETS ?= persist/codec:FuzzDecodeRecord persist/codec:FuzzReadSnapshot persist/codec:FuzzReadImport persist/codec:FuzzEntryLine \
	web:FuzzTxnBody web:FuzzKeyPath web:FuzzAppendJSONString web:FuzzAppendEntryJSON web:FuzzHotParse \
	persist/cluster:FuzzEntryCodec
# FUZZTIME is a number of inputs, not a duration: with a duration, Go's
# fuzzing coordinator can fail a run that found nothing with "context
# deadline exceeded" as the time runs out on a loaded machine
# (golang/go#75804, fixed in Go 1.27). -timeout still bounds each run.
FUZZTIME     ?= 50000x

.PHONY: all build wasm run deps deps-chromium deps-driver check check-full layout-check fmt-check vet staticcheck generate generate-check test-go \
	test test-e2e test-wasm fuzz mutants bench bench-http bench-peers bench-peers-deps bench-cluster bench-cluster-deps swaggerui soak clean distclean

# The default goal builds the server.
all: build

# build compiles the server to bin/pykv (and the browser wasm first, once it exists,
# so the server can embed it).
build: $(if $(HAVE_WASM),wasm)
	$(GO) build -o bin/pykv ./cmd/pykv

# wasm compiles ./wasm for the browser, copies Go's JS glue beside it, and
# precompresses it (-n keeps the gzip output byte-for-byte reproducible).
wasm:
	mkdir -p $(WASM_DIR)
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w' -o $(WASM_DIR)/pykv.wasm ./wasm
	cp $(GOROOT)/lib/wasm/wasm_exec.js $(WASM_DIR)/wasm_exec.js
	gzip -9 -n -c $(WASM_DIR)/pykv.wasm > $(WASM_DIR)/pykv.wasm.gz

# run serves PyKV on localhost with its data in ./data (git-ignored).
run: build
	bin/pykv serve --addr 127.0.0.1:8080 --data-dir ./data

# deps installs what the tests need beyond Go: Chromium, the pinned npm packages
# and the Playwright driver folder. Each step is skipped when already done.
deps: deps-chromium $(NPM_STAMP) deps-driver

# deps-chromium installs Debian's Chromium unless it is already there.
deps-chromium:
	@test -x $(CHROMIUM) || { \
		echo "installing chromium with apt-get"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	}

# node_modules is (re)installed when missing or older than the lock file. The
# stamp is written only after npm ci succeeds (npm ci empties node_modules
# first), so a failed install is retried next time.
# --ignore-scripts: neither package needs an install script, and the one in
# swagger-ui-dist's dependency @scarf/scarf only phones home.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	@touch $@

# deps-driver links the driver folder to node_modules and the machine's node
# (relative link, so the checkout can move), then checks the driver's version.
deps-driver: $(NPM_STAMP)
	@mkdir -p $(DRIVER)
	@ln -sfn ../../node_modules/playwright-core $(DRIVER)/package
	@ln -sfn "$$(command -v node)" $(DRIVER)/node
	@$(DRIVER)/node $(DRIVER)/package/cli.js --version | grep -q '1\.52\.0' || \
		{ echo "$(DRIVER): playwright-core is not 1.52.0, which playwright-go v0.5200.1 needs" >&2; exit 1; }

# check is the fast loop: no Chromium, no npm, no built binary. It fails on
# a top-level file the layout does not allow, on any file gofmt would change, on go vet (also of the js/wasm build), on
# staticcheck, on stale templ output, and on the race tests of CHECK_PKGS.
check: layout-check fmt-check vet staticcheck generate-check test-go

# layout-check fails if git tracks anything at the top level beyond what
# the design card allows (the seven folders, the build and module files,
# the README, .ci/ and dot-files, the pinned npm manifests): a stray binary
# or scratch file committed by accident shows up here.
TOP_LEVEL := cmd e2e engine persist static wasm web go.mod go.sum Makefile README.md package.json package-lock.json
layout-check:
	@extra=$$(git ls-files 2>/dev/null | cut -d/ -f1 | sort -u | grep -v '^\.' | grep -vxF $(patsubst %,-e %,$(TOP_LEVEL))); \
	if [ -n "$$extra" ]; then echo "not allowed at the top level (see the design card in the README): $$extra"; exit 1; fi

# fmt-check lists the files gofmt would change and fails if there is one.
fmt-check:
	@out=$$(gofmt -l $(GO_DIRS)); \
	if [ -n "$$out" ]; then echo "gofmt would change these files (run gofmt -w):"; echo "$$out"; exit 1; fi

# vet runs go vet on the native build and on the WebAssembly build, whose
# *_js.go files the native build does not compile.
vet:
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./engine/... ./wasm/...

# staticcheck runs the version pinned in go.mod.
staticcheck:
	$(GO) tool staticcheck ./...

# test-go runs the race tests of every package that needs no browser.
test-go:
	$(GO) test -race -count=1 -p $(TEST_P) $(CHECK_TESTFLAGS) -timeout 15m $(CHECK_PKGS)

# test runs everything CI checks (.ci/run calls it), layer by layer: check
# with every test in full, the end-to-end tests in e2e/ (Chromium through
# Playwright, and the real bin/pykv killed and restarted), the engine's tests
# compiled to WebAssembly and run under node, short fuzz runs, and the
# planted durability bugs. Each layer prints how long it took; after a red
# layer the later ones still run, so one run names every broken layer, and
# the run fails if any did.
TEST_LAYERS := check-full test-e2e test-wasm fuzz mutants
test: deps build
	@failed=""; \
	for layer in $(TEST_LAYERS); do \
		start=$$(date +%s); echo "::: $$layer"; \
		if $(MAKE) --no-print-directory $$layer; then result=ok; else result=FAILED; failed="$$failed $$layer"; fi; \
		echo "::: $$layer: $$(( $$(date +%s) - start ))s, $$result"; \
	done; \
	if [ -n "$$failed" ]; then echo "::: FAILED layers:$$failed"; exit 1; fi

# check-full is check with every test in full (the crash suites too).
check-full:
	@$(MAKE) --no-print-directory check CHECK_TESTFLAGS=

# test-e2e runs the end-to-end tests against bin/pykv in Chromium.
test-e2e: deps build
	$(GO) test -race -count=1 -timeout 20m ./e2e/

# test-wasm runs the tests of the engine and the codec, the two packages
# the browser build uses, compiled to WebAssembly under node.
test-wasm:
	GOOS=js GOARCH=wasm $(GO) test -count=1 -timeout 5m -exec="$(GOROOT)/lib/wasm/go_js_wasm_exec" ./engine/... ./persist/codec/...

# generate regenerates the templ components (the //go:generate line in
# web/doc.go runs `go tool templ generate` in web/).
generate:
	$(GO) generate ./...

# generate-check fails if a committed *_templ.go differs from what templ
# produces from its .templ file. It generates into a temporary copy, so it
# neither touches the working tree nor depends on what is committed: a
# regenerated but uncommitted component passes. Like go generate, templ runs
# in the template's folder (the folder name is part of the output).
generate-check:
ifneq ($(TEMPL_FILES),)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && templ=$$($(GO) tool -n templ) && \
	for f in $(TEMPL_FILES); do mkdir -p "$$tmp/$$(dirname $$f)" && cp "$$f" "$$tmp/$$f" || exit 1; done && \
	for d in $(sort $(dir $(TEMPL_FILES))); do (cd "$$tmp/$$d" && "$$templ" generate -log-level error) || exit 1; done && \
	for f in $(TEMPL_FILES); do g=$${f%.templ}_templ.go; \
		diff -u "$$g" "$$tmp/$$g" || { echo "$$g is stale: run make generate" >&2; exit 1; }; \
	done
else
	@echo "generate-check: no .templ files"
endif

# fuzz runs each target in FUZZ_TARGETS on FUZZTIME inputs.
fuzz:
	@for target in $(FUZZ_TARGETS); do \
		pkg=$${target%%:*}; name=$${target#*:}; \
		echo "$(GO) test -run='^\$$' -fuzz='^$$name\$$' -fuzztime=$(FUZZTIME) -timeout=5m ./$$pkg"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) -timeout=5m ./$$pkg || exit 1; \
	done

# mutants plants each durability bug the crash tests must catch (an answer
# before the fsync, no fsync of the snapshot or of the folder after its
# rename, the log cut before the snapshot is durable) in a copy of the code
# and checks that TestDB_PowerLoss goes red on every one.
mutants:
	$(GO) test -tags mutants -count=1 -timeout 15m -run '^TestMutants$$' ./persist/

# bench runs every benchmark once, with allocation counts, then the
# interleaved comparison with the peers (bench-peers).
bench: deps build bench-peers-deps bench-cluster-deps
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 -skip='^Benchmark(Peers|Cluster)$$' ./...
	@$(MAKE) --no-print-directory bench-peers
	@$(MAKE) --no-print-directory bench-cluster

# bench-cluster-deps installs Debian's etcd-server, the three-member
# cluster issue 11's comparison runs beside PyKV's.
bench-cluster-deps:
	@command -v etcd >/dev/null || { \
		echo "installing etcd-server with apt-get"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y etcd-server; \
	}

# bench-cluster runs issue 11's comparison (e2e/cluster_bench_test.go): a
# three-member PyKV cluster and a three-member etcd on loopback, 32
# connections, 10k keys, 100-byte values: PUT, linearizable and local GET,
# and failover (leader killed to first acknowledged write), in one run.
bench-cluster: build bench-cluster-deps
	$(GO) test -run='^$$' -bench='^BenchmarkCluster$$' -benchtime=1x -count=1 -timeout 20m ./e2e/

# bench-peers-deps installs the comparison's peers and load generator from
# Debian unless they are there: Redis, webdis in front of it, wrk, and
# perf (which counts both stores' fsync calls).
bench-peers-deps:
	@command -v redis-server >/dev/null && command -v webdis >/dev/null && \
	command -v wrk >/dev/null && command -v perf >/dev/null || { \
		echo "installing redis-server webdis wrk linux-perf with apt-get"; \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server webdis wrk linux-perf; \
	}

# bench-peers runs issue 12's comparison (e2e/peers_bench_test.go): PyKV,
# webdis+Redis (appendfsync always) and a bare net/http handler, all up at
# once, driven in turn by wrk -t1 -c32 over PYKV_PEERS_ROUNDS rounds
# (default 5) of PYKV_PEERS_SECONDS (default 4) per side.
bench-peers: build bench-peers-deps
	$(GO) test -run='^$$' -bench='^BenchmarkPeers$$' -benchtime=1x -count=1 -timeout 20m ./e2e/

# bench-http runs only the HTTP benchmarks of issue 3 (32 connections, 10k keys,
# 100-byte values; a constant-answer server first as the baseline), each for a
# fixed number of requests so the run takes about a minute.
bench-http:
	$(GO) test -run='^$$' -bench='^BenchmarkHTTP$$' -benchtime=50000x -count=1 -timeout 10m ./web/

# swaggerui refreshes web/swaggerui from the pinned swagger-ui-dist: the two
# large files gzipped (-n: reproducible bytes), the favicons and the licence.
# index.html and init.js there are PyKV's own and are left alone.
swaggerui: $(NPM_STAMP)
	gzip -9 -n -c node_modules/swagger-ui-dist/swagger-ui-bundle.js > web/swaggerui/swagger-ui-bundle.js.gz
	gzip -9 -n -c node_modules/swagger-ui-dist/swagger-ui.css > web/swaggerui/swagger-ui.css.gz
	cp node_modules/swagger-ui-dist/favicon-16x16.png node_modules/swagger-ui-dist/favicon-32x32.png web/swaggerui/
	cp node_modules/swagger-ui-dist/LICENSE web/swaggerui/LICENSE

# soak runs the long tests (PYKV_SOAK=1): TestSoak for 10 minutes, the crash
# loops 1,000 times, each of TestClusterFaults' seven faults 50 times (871 s
# alone on 2026-12-03; PYKV_CLUSTER_ROUNDS=N runs N instead), the power-loss
# and kill suites with more seeds. The e2e package runs them one after the
# other, hence the two-hour bound.
soak: deps build
	PYKV_SOAK=1 $(GO) test -race -count=1 -timeout 120m ./...

# clean removes build outputs and test artifacts; it keeps ./data and the deps.
clean:
	rm -rf bin e2e/artifacts
	rm -f $(WASM_DIR)/pykv.wasm $(WASM_DIR)/pykv.wasm.gz $(WASM_DIR)/wasm_exec.js

# distclean also removes the installed deps (node_modules, the driver folder).
distclean: clean
	rm -rf node_modules $(DRIVER)
