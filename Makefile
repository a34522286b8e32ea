# tradewire — build, test, run and benchmark.
#   make run    build and start the daemon in the foreground (simulated data, paper broker, loop on)
#   make test   install what is missing, build, run every test (Swift, Python, C, shell)
#   make bench  release build, then the benchmark table (in-process, socket, Redis side by side)
#   make bench-check  the in-process publish benchmarks against Benchmarks/Thresholds (regressions fail)
#   make install  release build of tradewired and tradewire into $(PREFIX)/bin (PREFIX=/usr/local)

SWIFT        ?= swift
BUILD_DIR    := .build/debug
RELEASE_DIR  := .build/release
## The nested benchmark package (Benchmarks/Package.swift) builds apart from the root one.
BENCH_RELEASE_DIR := Benchmarks/.build/release
SOCKET       ?=
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
## What the daemon links against (SQLite; jemalloc, see the README's "Why jemalloc") and
## pkg-config to find them: `make run` and `make install` install these first when missing.
BUILD_APT    := libsqlite3-dev libjemalloc-dev pkg-config
APT_PACKAGES := $(BUILD_APT) libjansson-dev socat netcat-openbsd jq valgrind
## The dashboard's browser test (headless Chromium driven by selenium).
APT_PACKAGES += chromium chromium-driver
## The benchmark harness's smoke test (clients/c/tests/bench_smoke.py) runs a redis-server.
APT_PACKAGES += redis-server
## The cluster's tests start private PostgreSQL servers (scripts/pg-server.sh).
APT_PACKAGES += postgresql
BENCH_APT    := redis-server redis-tools

.PHONY: all build test test-swift test-clients test-python test-c test-shell bench run lint deps bench-deps \
	build-deps clean install uninstall soak

all: build

## Installs those of the Debian packages $(1) that are missing (as root, else through sudo).
define apt-install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

## The libraries the daemon builds against, installed only when missing.
build-deps:
	$(call apt-install,$(BUILD_APT))

## Packages the client tests need, installed only when missing (fresh machines, CI).
deps:
	$(call apt-install,$(APT_PACKAGES))
	@python3 -c "import pytest" 2>/dev/null || python3 -m pip install -q pytest
	@python3 -c "import prometheus_client, requests_sse" 2>/dev/null || python3 -m pip install -q prometheus-client requests-sse
	@python3 -c "import selenium" 2>/dev/null || python3 -m pip install -q selenium

bench-deps: deps
	$(call apt-install,$(BENCH_APT))
	@python3 -c "import matplotlib" 2>/dev/null || python3 -m pip install -q matplotlib

build:
	$(SWIFT) build

## Every test. Swift first (unit, conformance, live-socket, CLI; serially, as live daemons
## share two cores), then the clients against live daemons; ends with one line
## `N passed, N failed` summing every suite.
test: deps build
	$(SWIFT) build --build-tests
	SWIFT=$(SWIFT) scripts/run-tests.sh

## The load tests for many rounds (SIGTERM/SIGINT under 10 publishers and 6 readers at
## varying moments; `make test` runs one round, SOAK_ROUNDS=25 here), then the remote-stage
## chaos run for CHAOS_ITERATIONS iterations (100 in `make test`, 1000 here) with a new seed,
## then the journal's kill -9 torture test for TORTURE_KILLS kills (30 in `make test`).
SOAK_ROUNDS ?= 25
CHAOS_ITERATIONS ?= 1000
TORTURE_KILLS ?= 300
## The consumer group's at-least-once chaos run (clients/python/tests/test_consumer_chaos.py):
## 2000 events and 2 daemon kills in `make test`, these here.
CONSUMER_CHAOS_EVENTS ?= 50000
CONSUMER_CHAOS_DAEMON_KILLS ?= 10
soak: build
	$(SWIFT) build --build-tests
	TW_SOAK_ROUNDS=$(SOAK_ROUNDS) $(SWIFT) test --skip-build --no-parallel --filter sigtermLosesNoAcknowledgedEvent
	TW_CHAOS_ITERATIONS=$(CHAOS_ITERATIONS) TW_CHAOS_SEED=$$(date +%s) $(SWIFT) test --skip-build --no-parallel \
		--filter StageChaosTests
	TW_TORTURE_KILLS=$(TORTURE_KILLS) $(SWIFT) test --skip-build --no-parallel --filter JournalTortureTests
	TW_CONSUMER_CHAOS_EVENTS=$(CONSUMER_CHAOS_EVENTS) TW_CONSUMER_CHAOS_DAEMON_KILLS=$(CONSUMER_CHAOS_DAEMON_KILLS) \
		TRADEWIRED=$(CURDIR)/$(BUILD_DIR)/tradewired clients/python/run-tests.sh -k consumer_chaos

test-swift: build
	$(SWIFT) test --no-parallel

test-clients: test-python test-c test-shell

test-python:
	TRADEWIRED=$(CURDIR)/$(BUILD_DIR)/tradewired clients/python/run-tests.sh

test-c:
	TRADEWIRED=$(CURDIR)/$(BUILD_DIR)/tradewired $(MAKE) -C clients/c test valgrind

test-shell:
	TRADEWIRED=$(CURDIR)/$(BUILD_DIR)/tradewired bash clients/shell/test.sh

## Benchmarks are not tests: numbers go in the table, never in assertions.
## bench-cluster alone: the cluster on PostgreSQL beside one daemon on SQLite.
bench-cluster: deps
	$(SWIFT) build -c release --product tradewired
	$(MAKE) -C clients/c all
	python3 scripts/bench-cluster.py $(CURDIR)/$(RELEASE_DIR)

bench: bench-deps
	$(SWIFT) build -c release --package-path Benchmarks --product TradewireBenchmarks
	$(SWIFT) build -c release --product tradewired
	$(MAKE) -C clients/c all
	cd Benchmarks && $(SWIFT) package benchmark --no-progress
	$(BENCH_RELEASE_DIR)/TradewireBenchmarks iterations
	bash scripts/bench-socket.sh $(CURDIR)/$(RELEASE_DIR)
	python3 scripts/bench-stages.py $(CURDIR)/$(RELEASE_DIR)
	python3 scripts/bench-journal.py $(CURDIR)/$(RELEASE_DIR)
	bash scripts/bench-consumer.sh $(CURDIR)/$(RELEASE_DIR)
	$(BENCH_RELEASE_DIR)/TradewireBenchmarks metrics-cost
	python3 scripts/bench-http.py $(CURDIR)/$(RELEASE_DIR)
	python3 scripts/bench-cluster.py $(CURDIR)/$(RELEASE_DIR)
	python3 scripts/bench-redis.py $(CURDIR)/$(RELEASE_DIR)

.PHONY: bench-check bench-thresholds bench-cluster
## The in-process publish benchmarks (ordo-one/benchmark, release build) against the stored
## thresholds in Benchmarks/Thresholds: exits non-zero when one is slower or allocates more
## than its tolerance allows (Benchmarks/README.md). Not part of `make test`.
bench-check:
	SWIFT=$(SWIFT) bash scripts/bench-check.sh

## After a deliberate change (on a quiet machine): runs the suite 3 times and stores its p90
## wall clock (median of the runs) and allocations as the new thresholds; commit Benchmarks/Thresholds.
bench-thresholds:
	SWIFT=$(SWIFT) bash scripts/bench-thresholds.sh

## Builds and starts the daemon in the foreground with the loop running on the embedded defaults,
## and the dashboard on http://$(HTTP) (HTTP=127.0.0.1:PORT to move it; HTTP= to leave it off).
HTTP ?= 127.0.0.1:8090
run: build-deps
	$(SWIFT) build --product tradewired
	$(SWIFT) build --product tradewire
	@echo ""
	@echo "Starting tradewired in the foreground (Ctrl-C to stop). From another terminal:"
	@echo "  $(BUILD_DIR)/tradewire status                 # daemon and loop state"
	@echo "  $(BUILD_DIR)/tradewire run AAPL MSFT --dry-run # one iteration, nothing traded"
	@echo "  $(BUILD_DIR)/tradewire subscribe '*'          # watch every event"
	@echo "  $(BUILD_DIR)/tradewire stats"
	@echo "  $(BUILD_DIR)/tradewire portfolio              # the paper book (kept in the journal)"
	@echo ""
	$(if $(HTTP),@echo "dashboard: http://$(HTTP)/" && echo "")
	exec $(BUILD_DIR)/tradewired --loop $(if $(SOCKET),--socket $(SOCKET)) $(if $(HTTP),--http $(HTTP))

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Benchmarks

## Release builds of the daemon and the CLI, installed into $(DESTDIR)$(BINDIR).
install: build-deps
	$(SWIFT) build -c release --product tradewired
	$(SWIFT) build -c release --product tradewire
	install -d $(DESTDIR)$(BINDIR)
	install -m 755 $(RELEASE_DIR)/tradewired $(RELEASE_DIR)/tradewire $(DESTDIR)$(BINDIR)/
	@echo "installed tradewired and tradewire in $(DESTDIR)$(BINDIR)"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tradewired $(DESTDIR)$(BINDIR)/tradewire

clean:
	rm -rf .build Benchmarks/.build Benchmarks/.benchmarkBaselines
	$(MAKE) -C clients/c clean
