# Switchboard developer commands. `make setup` once, then `make test`.
.PHONY: setup daprd test test-fast lint gen check-gen ts proto-lint proto-breaking bench bench-knowledge bench-retrieval bench-tools bench-chaos up clean

VENV := .venv/bin
PYTEST_ARGS ?=

setup:  ## install every dependency (Python, buf, grpcurl, daprd, redis-server) from the project's pins
	bash scripts/setup.sh

daprd:  ## build daprd from tools/daprd (once per machine, cached) and link it into .tools/bin
	bash scripts/build_daprd.sh

# Two pytest-xdist workers, a test file each at a time (module fixtures start a platform per file):
# most tests wait on processes and sockets, so two workers halve the wall time on two cores.
TEST_WORKERS ?= 2

test: check-gen ts  ## the whole suite: real processes on loopback sockets (Go and TypeScript clients and agent included)
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(VENV)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: proto-lint  ## buf lint, ruff, mypy, tsc --noEmit (strict) and go vet
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy
	bash scripts/build_ts.sh --check
	cd gen/go && go vet ./...
	cd examples/go && go vet ./...

gen:  ## regenerate gen/python, gen/ts and gen/go from proto/ (and the A2A Go stubs from the a2a-sdk)
	bash scripts/gen.sh

check-gen:  ## fail if gen/python, gen/ts or gen/go is out of date
	bash scripts/check_gen.sh

ts:  ## compile gen/ts, examples/ts and agents/ts-* into .build/ts (what node runs)
	bash scripts/build_ts.sh

proto-lint:  ## buf lint (STANDARD)
	bash scripts/buf_lint.sh

proto-breaking:  ## buf breaking (FILE) against the baseline commit
	bash scripts/buf_breaking.sh

# bench.state runs even when bench.latency misses a target; the target fails if either did.
# --litellm installs LiteLLM's proxy (bench/litellm/requirements.txt) into .tools/litellm-venv on first use.
bench:  ## every chat path beside LiteLLM's proxy (issue 17's table and targets), then the state and event adapters
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(VENV)/python -m bench.latency --litellm; latency=$$?; \
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(VENV)/python -m bench.state && exit $$latency

bench-knowledge:  ## ingest rate, hybrid search at 10k/100k chunks, memory, extractive answer end to end
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(VENV)/python -m bench.knowledge

bench-retrieval:  ## nDCG@10 of every search mode on the shipped set and on this machine's man pages (their corpus built first)
	$(VENV)/python -m bench.manpages
	$(VENV)/switchboard eval retrieval --dataset bench/data/switchboard-mini --dataset bench/data/manpages --mode all

bench-tools:  ## per-call cost of the agent's MCP toolbox and tool loop against the mcp SDK calling the same servers
	$(VENV)/python -m bench.tools

bench-chaos:  ## kill -9 of reasoning, orchestrator, gateway under 20 streaming chats for 90 s; writes bench/results/chaos.json
	PATH="$(CURDIR)/.tools/bin:$$PATH" $(VENV)/python -m bench.chaos

up:  ## the whole platform on embedded defaults
	$(VENV)/switchboard up

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
