# Two commands set everything up on a fresh machine:
#   make run    install what is missing, build or update the index, start the app
#   make test   install what is missing, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test install index bench eval clean

run: $(STAMP)
	$(BIN)/qa index
	$(BIN)/python app.py

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch is pinned to the CPU build first, so no dependency pulls a CUDA build.
	$(BIN)/pip install --disable-pip-version-check -q torch==2.13.0
	# llama-cpp-python (test extra) builds llama.cpp from source: text only (no multimodal library), all cores, and for
	# any x86-64 with AVX2 rather than for this CPU: built natively on a virtual Xeon offering AVX-512 and AMX, its server
	# crashed (segmentation fault) at the first token; pip caches the wheel it builds, so the build must suit any machine.
	CMAKE_ARGS="$${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="$$(nproc)" \
		$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

index: $(STAMP)
	$(BIN)/qa index

bench: $(STAMP)
	$(BIN)/python scripts/bench_index.py

clean:
	rm -rf index data .pytest_cache
