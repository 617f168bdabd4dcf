# Two commands on a fresh machine: `make demo` and `make test`.
# Everything is installed into .venv from the package registries.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo bench clean

$(PY):
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "python3-venv missing: installing it with apt"; \
	  apt-get update && apt-get install -y python3-venv python3-pip && $(PYTHON) -m venv $(VENV); }

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(VENV)/bin/amanat demo

bench: $(STAMP)
	$(VENV)/bin/amanat bench --device-crypto --emulator

clean:
	rm -rf $(VENV) build *.egg-info host/*.egg-info .pytest_cache .hypothesis
