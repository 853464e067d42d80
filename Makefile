# sallyport — the two commands a newcomer needs are `make demo` and `make test`.
GO        ?= go
BIN       := bin/sallyport
DEMO_DIR  ?= ./sallyport-demo
PKGS      := ./...
# Debian packages the tests, demo and benchmarks talk to (real servers and clients).
DEB_PKGS  := openssh-server openssh-client postgresql postgresql-client mariadb-server mariadb-client asciinema pgbouncer sysbench haproxy chromium ansible-core zstd
# Every test package gets this long; the whole run must stay well under 20 minutes.
TEST_TIMEOUT ?= 15m

.PHONY: all build test deps vet lint demo bench fuzz clean web-assets screenshot

all: build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/sallyport

## deps: install the Debian packages the tests need (idempotent; needs root or sudo).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "deps: all Debian packages present"; fi

vet:
	$(GO) vet $(PKGS)

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@# Auditors run replay and verify on their laptops: the CLI builds for macOS too.
	GOOS=darwin $(GO) build -o /dev/null ./cmd/sallyport

## test: deps, vet, then every test against real servers (CI=true: a missing server fails).
test: deps lint
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

## demo: build and run the bastion on its embedded default with a seeded registry.
demo: build
	./$(BIN) demo --dir $(DEMO_DIR)

## screenshot: refresh the README's picture of the console's session page (needs chromium).
screenshot:
	SALLYPORT_SCREENSHOT=$(CURDIR)/docs/console-session.png $(GO) test -count=1 -run '^TestSessionPageScreenshot$$' ./web/

## bench: every comparison of the issues in one run (direct vs sallyport vs peer,
## recording on; about 10 minutes on 2 cores), then writes docs/benchmarks.md
## from the log in bin/bench/bench.log (tools/benchdoc). The registry and
## recorder benchmarks take samples (-benchtime default); the proxy ones run
## their own load generators (ssh, pgbench, psql, mysqlslap) once each. Fails
## when a benchmark failed, after writing the document that names it.
BENCH_DIR := bin/bench
BENCH_LOG := $(BENCH_DIR)/bench.log
BENCHDOC  := $(BENCH_DIR)/benchdoc
# bench_run logs a command line as run, then its output, to BENCH_LOG.
bench_run = $(BENCHDOC) command $(1) >> $(BENCH_LOG) && $(1) 2>&1 | tee -a $(BENCH_LOG)
bench: deps build
	@mkdir -p $(BENCH_DIR)
	$(GO) build -o $(BENCHDOC) ./tools/benchdoc
	@$(BENCHDOC) mark start > $(BENCH_LOG)
	@$(call bench_run,$(GO) test -run '^$$' -bench . -timeout 10m ./iga/... ./recorder/...)
	@$(call bench_run,$(GO) test -run '^$$' -bench . -timeout 30m ./search/)
	@$(call bench_run,$(GO) test -run '^$$' -bench PgbenchIndexing -benchtime 1x -timeout 10m ./cmd/sallyport/)
	@$(call bench_run,$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./proxy/... ./deploy/...)
	@$(BENCHDOC) mark end >> $(BENCH_LOG)
	$(BENCHDOC) render -o docs/benchmarks.md $(BENCH_LOG)

## fuzz: a short run (FUZZTIME, default 20s) of every fuzz target in the repo, one at
## a time; a package whose tests do not build fails it. Their seed corpora in
## testdata/fuzz also run in make test.
fuzz:
	@n=0; for pkg in $$($(GO) list ./...); do \
		list=$$($(GO) test -list '^Fuzz' $$pkg) || exit 1; \
		for f in $$(echo "$$list" | grep '^Fuzz'); do \
			echo "fuzz: $$f in $$pkg"; n=$$((n+1)); \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$pkg || exit 1; \
		done; \
	done; echo "fuzz: $$n targets ran"

## web-assets: refresh the console's asciinema-player (npm package, built files and licence).
ASCIINEMA_PLAYER ?= asciinema-player@3.18.0
web-assets:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent $(ASCIINEMA_PLAYER) >/dev/null && tar xzf asciinema-player-*.tgz) && \
	cp "$$tmp/package/dist/bundle/asciinema-player.min.js" "$$tmp/package/dist/bundle/asciinema-player.css" web/static/ && \
	cp "$$tmp/package/LICENSE" web/static/asciinema-player.LICENSE && \
	v=$$(sed -n 's/^  "version": "\(.*\)",/\1/p' "$$tmp/package/package.json") && \
	echo "asciinema-player $$v (npm), Apache-2.0: asciinema-player.min.js and asciinema-player.css from dist/bundle; refreshed by make web-assets" > web/static/asciinema-player.VERSION && \
	echo "web/static: asciinema-player $$v"

clean:
	rm -rf bin
