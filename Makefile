# sara: two-command quickstart.  `make demo` and `make test` both work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first and pinned: this exact version is a CPU wheel on the build machines; a bare
# `torch` requirement would pull a multi-GB CUDA build.  GPU users install their own torch first.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all lint clean browser-deps corpus-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[text,train,ldm,eval,serve,browser,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/sara demo --output demo_out

test: $(STAMP) browser-deps
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest tests

# everything, including the minutes-long @slow tests (e.g. the DiT learning its conditioning)
test-all: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest tests -m ""

# Debian's chromium + chromium-driver for the `sara serve` browser test (tests/serve/test_browser.py), installed
# only when missing and when apt-get can run (as root); elsewhere the test says why it is skipped (and fails
# under CI=true, so CI never skips it silently).
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else echo "browser-deps: chromium / chromedriver not found and apt-get cannot run as root here;" \
		"install them (Debian: apt-get install chromium chromium-driver) to run the browser test"; fi

# what `sara data build-corpus` needs beyond `make install`: Debian's espeak-ng (speech synthesis) and
# tinysoundfont (instrument / drum / GM sfx synthesis).  tinysoundfont's PyPI metadata asks for pyaudio, which only
# plays audio and needs the PortAudio headers to build, so it is installed without its dependencies.
corpus-deps: $(STAMP)
	@command -v espeak-ng >/dev/null || { if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng; \
	else echo "corpus-deps: install espeak-ng (Debian: apt-get install espeak-ng)"; exit 1; fi; }
	$(BIN)/python -m pip install -q --no-deps "tinysoundfont>=0.3"

lint: $(STAMP)
	$(BIN)/ruff check sara tests benchmarks

clean:
	rm -rf $(VENV) demo_out .pytest_cache
