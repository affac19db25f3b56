# tunterm — see README.md. Everything here runs as root on Debian 12.
GO       ?= go
PY       ?= /usr/bin/python3
BIN      := bin
PKGS     := ./...
# Dataplane packages run under the race detector too.
RACE_PKGS := ./dataplane/... ./control/... ./ebpf/...
# A count, not a duration: a duration -fuzztime can fail spuriously with
# "context deadline exceeded" on Go < 1.27 (golang/go#75804).
FUZZTIME ?= 20000x

.PHONY: all build run demo test deps unit race portable abtest fuzz vet bench bench-dataplane bench-radsec bench-ike bench-live bench-smoke clean generate generate-check

all: build

build:
	$(GO) build -o $(BIN)/tunterm ./cmd/tunterm

# `make run`: the live lab (root): tunterm in a network namespace between 20
# simulated APs and a corporate trunk, 20,000 frames/s each way (AES-GCM ESP
# over L2TPv3, 802.1Q on the trunk), progress every 2 s; Ctrl-C tears it all
# down. LAB_ARGS="--duration 20s" ends by itself.
run: build
	$(GO) build -o $(BIN)/ttgen ./cmd/ttgen
	$(GO) build -o $(BIN)/tunterm-lab ./bench/lab
	$(BIN)/tunterm-lab --bin $(BIN) --no-build $(LAB_ARGS)

# `make demo`: the offline pipeline on the shipped captures (two APs, both
# directions, a few attacks): what came out and why, no root needed.
demo: build
	@echo "== tunterm replay on testdata/demo (AP -> corporate and corporate -> AP) =="
	@mkdir -p $(BIN)/demo
	$(BIN)/tunterm replay -v --config testdata/demo/tunterm.yaml \
	  --downstream-in testdata/demo/downstream-in.pcap --upstream-in testdata/demo/upstream-in.pcap \
	  --upstream-out $(BIN)/demo/upstream-out.pcap --downstream-out $(BIN)/demo/downstream-out.pcap \
	  --drops $(BIN)/demo/drops.pcapng
	@echo
	@echo "== outputs in $(BIN)/demo/ =="
	@if command -v tshark >/dev/null; then \
	  echo "-- upstream-out.pcap (frames sent to the corporate trunk):"; \
	  tshark -r $(BIN)/demo/upstream-out.pcap 2>/dev/null | sed 's/^/   /'; \
	  echo "-- downstream-out.pcap (ESP sent to the APs):"; \
	  tshark -r $(BIN)/demo/downstream-out.pcap 2>/dev/null | sed 's/^/   /'; \
	  echo "-- drops.pcapng (interface = direction:reason):"; \
	  tshark -r $(BIN)/demo/drops.pcapng -T fields -e frame.number -e frame.interface_name -e _ws.col.Info 2>/dev/null | sed 's/^/   /'; \
	else echo "(install tshark to see the outputs dissected: make deps)"; fi

# Packages the tests need (Debian 12): tshark and scapy (interop oracles),
# FreeRADIUS + radsecproxy (RadSec interop), strongSwan with kernel-libipsec
# (IKEv2 interop), iproute2 (netns labs), nftables (a real NAT in front of
# two strongSwan APs). Idempotent; quiet when present.
DEB_PKGS := tshark python3-scapy freeradius freeradius-utils radsecproxy openssl \
            strongswan-charon strongswan-swanctl libcharon-extra-plugins iproute2 \
            python3-prometheus-client nftables
deps:
	@missing=""; \
	for c in tshark radsecproxy freeradius radclient openssl ip nft /usr/lib/ipsec/charon swanctl; do \
	  command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	$(PY) -c 'import scapy, prometheus_client' 2>/dev/null || missing="$$missing python-modules"; \
	if [ -n "$$missing" ]; then \
	  echo "installing test dependencies (missing:$$missing)"; \
	  apt-get update -qq && \
	  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	fi
	$(GO) mod download

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

unit:
	$(GO) test -count=1 $(PKGS)

race:
	$(GO) test -count=1 -race $(RACE_PKGS)

# The generic code that CPUs without VAES or PREFETCHW and other
# architectures run (the files behind the purego build tag), tested here.
# Skipped: ChaCha20-Poly1305's zero-allocation check, because x/crypto's
# generic ChaCha20-Poly1305 allocates 32 bytes per packet (docs/performance.md).
portable:
	$(GO) test -count=1 -tags purego -skip 'TestZeroAllocs/chacha20-poly1305' ./dataplane/internal/... ./dataplane/esp/... ./dataplane/pipeline

# The paired live A/B build (tag ttab, docs/benchmark.md): the dataplane
# compiles with it and its switch alternates and times batches.
abtest:
	$(GO) vet -tags ttab ./dataplane/...
	$(GO) test -count=1 -tags ttab ./dataplane/internal/abtest

# Every fuzz target, briefly. Go runs one -fuzz target per invocation.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

test: deps vet unit race portable abtest fuzz
	@echo "make test: all passed"

# Benchmarks (never timed tests). Figures are recorded in docs/performance.md.
bench: bench-dataplane bench-radsec bench-ike

# The live X1/X5/X10 harness (root): generator ns -> tunterm (AF_XDP on veth)
# -> sink ns, both directions, against a plain AF_XDP forwarder's ceiling.
# One JSON per case in bench/results/, then the table and docs/benchmark-live.svg.
# Subsets: make bench-live LIVE_ARGS="--tunnels 500 --sizes 128,1400 --dirs down".
bench-live: build
	$(GO) run ./bench/live $(LIVE_ARGS)
	$(GO) run ./bench/live report

# Seconds-long smoke of the live harness (also run by `make test` as the
# bench/live Go test).
bench-smoke:
	$(GO) run ./bench/live --smoke --out $(BIN)/bench-smoke

# IKE: handshakes/s (PSK and ECDSA) and the time for 10,000 APs to connect;
# snapshot rebuild cost per CHILD_SA install (figures in docs/performance.md).
bench-ike:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench BenchmarkHandshake -benchtime 10000x ./control/ike/ | tee $(BIN)/bench-ike.txt
	$(GO) test -run '^$$' -bench BenchmarkInstallChild ./control/programmer/ | tee -a $(BIN)/bench-ike.txt

# RadSec proxy: requests/s and p50/p99 with 1 to 1,000 AP TLS connections
# against an in-process RADIUS server (figures in docs/radsec.md).
bench-radsec:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench BenchmarkProxy -benchtime 20000x -count 3 ./control/radsec | tee $(BIN)/bench-radsec.txt

# Per stage (hdr, esp, bridge, ring) and whole path (pipeline), best of 3
# runs per benchmark, formatted as the tables of docs/performance.md.
bench-dataplane:
	@mkdir -p $(BIN)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 20000x -count 3 \
	  ./dataplane/pipeline/ ./dataplane/esp/ ./dataplane/esp/internal/vaesgcm/ ./dataplane/hdr/ ./dataplane/bridge/ ./dataplane/ring/ ./dataplane/table/ \
	  | tee $(BIN)/bench-dataplane.txt | $(GO) run ./bench/benchfmt | tee $(BIN)/bench-dataplane.md

# Regenerate the committed bpf2go output (ebpf/steer/*_bpfel.{go,o}) from
# ebpf/*.c. Needs clang, llvm and libbpf-dev (apt-get install clang llvm
# libbpf-dev); nothing else in the build needs them.
generate:
	$(GO) generate ./ebpf/...

# Fail if the committed generated files are stale (same clang version only).
generate-check: generate
	git diff --exit-code -- ebpf/steer/

clean:
	rm -rf $(BIN)
