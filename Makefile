# loadramp — see README.md. Every target works on a fresh Debian machine with Go, as root.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/loadramp/loadramp/internal/cli.Version=$(VERSION)
PKGS    := ./...
# Fuzz time per target for `make fuzz`.
FUZZTIME ?= 30s

.PHONY: all build demo test test-deps lint vet fmt-check tf-fmt-check bench bench-agents bench-generator fuzz schema proto proto-check clean

all: build

## build: compile loadramp and the bundled event bus into bin/
build:
	@mkdir -p bin
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/loadramp ./cmd/loadramp
	$(GO) build -o bin/eventbus ./cmd/eventbus

## demo: build, then ramp the bundled event bus on this machine (no cloud, no Terraform)
demo: build
	bin/loadramp run plans/local-eventbus.yaml

## test-deps: install what the tests need (Debian packages), once
test-deps:
	@bash scripts/test-deps.sh

## bin/terraform: build Terraform 1.5.7 (the last MPL release) from the Go module proxy, once (~5 min)
TERRAFORM_VERSION ?= 1.5.7
bin/terraform:
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin $(GO) install github.com/hashicorp/terraform@v$(TERRAFORM_VERSION)

# Terraform warns on every command without a CLI config: give it an empty one
# unless the user has one.
ifeq ($(wildcard $(TF_CLI_CONFIG_FILE)),)
export TF_CLI_CONFIG_FILE := $(CURDIR)/bin/terraformrc.empty
endif
$(CURDIR)/bin/terraformrc.empty:
	@mkdir -p bin && touch $@

## test: install test dependencies, check formatting and vet, run every test with the race detector
# The CLI's end-to-end runs go last, alone: they judge whether their generator
# was starved of CPU, which the other packages' tests beside them would cause.
test: test-deps build bin/terraform $(CURDIR)/bin/terraformrc.empty lint tf-fmt-check
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list $(PKGS) | grep -v '/internal/cli$$')
	$(GO) test -race -count=1 -timeout 25m ./internal/cli

## lint: gofmt check and go vet
lint: fmt-check vet
## tf-fmt-check: the Terraform modules are terraform fmt clean
tf-fmt-check: bin/terraform $(CURDIR)/bin/terraformrc.empty
	bin/terraform fmt -check -recursive -diff infra/modules
fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
vet:
	$(GO) vet $(PKGS)

## bench: Go benchmarks (the agents' among them), then the generator comparison against wrk and vegeta
bench: build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(MAKE) bench-generator

## bench-agents: the coordinator's overhead per step (split, prepare, start, finish, merge) with 2 and 16 agents, in-process and as real loadramp agent processes, and the merged p99's accuracy
bench-agents: build
	$(GO) test -run '^$$' -bench 'CoordinatorStep|AgentProcesses' -benchtime 20x ./orchestrator/agents ./internal/cli

## bench-generator: generator and `loadramp run` vs wrk against nginx, held-open SSE subscribers (pinned CPUs); PASS/FAIL per target
bench-generator: build
	bash bench/generator.sh

## proto: regenerate the agent protocol's Go code (gen/) from proto/ with pinned buf and plugins in ./bin
BUF_VERSION             ?= v1.75.0
PROTOC_GEN_GO_VERSION   ?= v1.36.12
PROTOC_GEN_CONNECT_VERSION ?= v1.21.1
bin/buf:
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
bin/protoc-gen-go:
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
bin/protoc-gen-connect-go:
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin $(GO) install connectrpc.com/connect/cmd/protoc-gen-connect-go@$(PROTOC_GEN_CONNECT_VERSION)
proto: bin/buf bin/protoc-gen-go bin/protoc-gen-connect-go
	bin/buf lint
	bin/buf generate
## proto-check: the committed gen/ is what make proto writes
proto-check: proto
	git diff --exit-code -- gen/

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./orchestrator/plan
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./orchestrator/gate
	$(GO) test -run '^$$' -fuzz '^FuzzParseProcStat$$' -fuzztime $(FUZZTIME) ./orchestrator/hoststat
	$(GO) test -run '^$$' -fuzz '^FuzzDirentNames$$' -fuzztime $(FUZZTIME) ./orchestrator/hoststat
	$(GO) test -run '^$$' -fuzz '^FuzzFieldAtou$$' -fuzztime $(FUZZTIME) ./orchestrator/hoststat
	$(GO) test -run '^$$' -fuzz '^FuzzParseMessage$$' -fuzztime $(FUZZTIME) ./orchestrator/delivery
	$(GO) test -run '^$$' -fuzz '^FuzzCheckPromQL$$' -fuzztime $(FUZZTIME) ./orchestrator/prom
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./orchestrator/prom
	$(GO) test -run '^$$' -fuzz '^FuzzParseEthtoolStats$$' -fuzztime $(FUZZTIME) ./orchestrator/hoststat
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeHist$$' -fuzztime $(FUZZTIME) ./orchestrator/agent
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeResult$$' -fuzztime $(FUZZTIME) ./orchestrator/agent
	$(GO) test -run '^$$' -fuzz '^FuzzParseStepAddr$$' -fuzztime $(FUZZTIME) ./orchestrator/record
	$(GO) test -run '^$$' -fuzz '^FuzzReadNotes$$' -fuzztime $(FUZZTIME) ./orchestrator/record
	$(GO) test -run '^$$' -fuzz '^FuzzRequestTemplate$$' -fuzztime $(FUZZTIME) ./orchestrator/plan
	$(GO) test -run '^$$' -fuzz '^FuzzCSVFeeder$$' -fuzztime $(FUZZTIME) ./orchestrator/plan
	$(GO) test -run '^$$' -fuzz '^FuzzJSONLFeeder$$' -fuzztime $(FUZZTIME) ./orchestrator/plan
	$(GO) test -run '^$$' -fuzz '^FuzzJSONLookup$$' -fuzztime $(FUZZTIME) ./orchestrator/loadgen
	$(GO) test -run '^$$' -fuzz '^FuzzRxTimestamp$$' -fuzztime $(FUZZTIME) ./orchestrator/loadgen
	$(GO) test -run '^$$' -fuzz '^FuzzParseList$$' -fuzztime $(FUZZTIME) ./orchestrator/agents

## schema: regenerate docs/plan.schema.json from the plan's types (a test fails while it is stale)
schema:
	$(GO) run ./cmd/loadramp schema > docs/plan.schema.json

clean:
	rm -rf bin runs
