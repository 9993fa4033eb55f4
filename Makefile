# Tether — developer commands. `make test` is the one CI runs (.ci/run).

GO ?= go

.PHONY: test peers vet build demo bench-mux tray-screenshot

## test: everything CI checks — vet, then every test with the race detector.
test: peers vet
	$(GO) test -race -count=1 -timeout 15m ./...
	@# Every Go benchmark once (about 20 s), so none rots unseen: two in
	@# relay/server failed for days while CI stayed green.
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 ./...

## peers: the real MCP peers the tests run against (npm), installed once.
peers:
	@if [ ! -x tools/npm/node_modules/.bin/mcp-server-everything ] || [ tools/npm/package-lock.json -nt tools/npm/node_modules/.package-lock.json ]; then \
		npm ci --prefix tools/npm --no-audit --no-fund --loglevel=error; \
	fi

## vet: go vet for this machine and for Windows and macOS (test files
## included; the tray is left out on macOS, where it needs cgo), then
## staticcheck (pinned in go.mod as a tool). The import rules are a test:
## internal/deptest.
vet:
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	GOOS=darwin $(GO) vet $$($(GO) list ./... | grep -v /cmd/tray)
	$(GO) tool staticcheck ./...

## build: the three binaries into ./bin (tetherd, tether-relay, tether)
build:
	$(GO) build -o bin/tetherd ./cmd/svc
	$(GO) build -o bin/tether-relay ./cmd/relay
	$(GO) build -o bin/tether ./cmd/tray

## tray-screenshot: docs/tray.png under Xvfb (needs the packages listed in
## scripts/tray-screenshot.sh; not part of CI)
tray-screenshot:
	scripts/tray-screenshot.sh

## demo: a relay on loopback, a sample server, and the MCP URL to try.
demo:
	$(GO) run ./cmd/svc demo

## bench-mux: the multiplexer's overhead against a plain stdio client.
bench-mux:
	$(GO) test -run '^$$' -bench . -benchmem ./mcpchild/

.PHONY: conformance

## conformance: the official MCP conformance suite (pinned in
## tools/conformance) against the go-sdk's everything-server, directly and
## through the relay and tetherd; verdicts side by side, compared check by
## check (about 2 minutes).
conformance:
	scripts/conformance.sh

.PHONY: soak

## soak: the fault suite's long run (500 relay kills, 90 s outages, 100
## orphan cycles, 10 minutes of steady load); prints the table and writes it
## to bench/results/faults.md. The short run is part of `make test`.
soak: peers
	TETHER_FAULT_TABLE=$(CURDIR)/bench/results/faults.md $(GO) test -race -count=1 -timeout 120m -run 'TestFault|TestSoak' ./e2e -args -soak

.PHONY: bench bench-smoke

## bench: every performance figure side by side with the npm peers, in one
## run (a few minutes); the table goes to stdout, the figures to JSON.
bench: peers
	$(GO) run ./bench -json bench/results/latest.json

## bench-smoke: the same harness in about 20 s (few calls, 50 bridges), so
## it cannot rot; CI runs it but does not judge its figures.
bench-smoke: peers
	$(GO) run ./bench -quick

.PHONY: fuzz

## fuzz: every Fuzz target in the repo (frame decoding, the JSON-RPC peek,
## session ids, bearer tokens, Host/Origin, tether:// links, the JSON
## scanner, netlink parsing) for FUZZTIME each (default 30s), one at a
## time from its seed corpus in testdata/fuzz; fails on any crasher.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

.PHONY: dist dist-ci dist-check winres

## dist: every release artifact that builds on Linux, into dist/ (.deb for
## the client and the relay, relay tarballs, Windows zips and installers, a
## macOS Tether.app skeleton without its cgo tray for
## packaging/macos/finish.sh to finish on a Mac, SHA256SUMS, a CycloneDX SBOM).
## VERSION=1.2.3 for a release; TARGETS="linux/amd64 …" for a subset. See
## packaging/README.md.
dist:
	packaging/build.sh

## dist-ci: the subset CI builds and checks: the linux/amd64 .debs and relay
## tarball, the windows/amd64 zip and installer and the darwin/amd64
## Tether.app skeleton
## (then `make dist-check` validates it, whatever subset dist/ holds).
dist-ci:
	TARGETS="linux/amd64 windows/amd64 darwin/amd64" packaging/build.sh

## dist-check: validate dist/ (dpkg-deb, desktop-file-validate,
## systemd-analyze, PE subsystem, resources and version, the installer's
## payload, Info.plist keys, finish.sh, checksums) and lint the Containerfiles.
dist-check:
	packaging/check.sh

## winres: regenerate cmd/tray's Windows resources (icon, manifest, version)
## from packaging/windows/winres.json.
winres:
	GOFLAGS= $(GO) run github.com/tc-hib/go-winres@v0.3.3 make --in packaging/windows/winres.json --out cmd/tray/rsrc --arch amd64,arm64
