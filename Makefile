# Two commands on a fresh machine: `make demo` and `make test`.
# Everything is installed into .venv from the package registries; the QEMU
# target also needs an ARM toolchain and QEMU (docs/qemu.md).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# The QEMU target: Debian's packages, and what `make qemu` checks for.
QEMU_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
QEMU_TOOLS_OK  = command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null && \
                 test -f "$$(arm-none-eabi-gcc -print-file-name=libc.a)" && test "$$(arm-none-eabi-gcc -print-file-name=libc.a)" != libc.a

# The Electrum interop test runs Debian's Electrum with the system python3.
ELECTRUM_OK = /usr/bin/python3 -c "import electrum" 2>/dev/null

.PHONY: test demo bench clean qemu qemu-toolchain qemu-if-possible electrum-if-possible

$(PY):
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "python3-venv missing: installing it with apt"; \
	  apt-get update && apt-get install -y python3-venv python3-pip && $(PYTHON) -m venv $(VENV); }

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

# The QEMU image first when it can be built (AMANAT_REQUIRE_QEMU=1: it must
# be), then every test; the QEMU tests skip without an image.
test: $(STAMP)
	@$(MAKE) --no-print-directory qemu-if-possible
	@$(MAKE) --no-print-directory electrum-if-possible
	$(PY) -m pytest -q

# python3-electrum from apt when it can be had (AMANAT_REQUIRE_ELECTRUM=1: it must be).
electrum-if-possible:
	@if ! $(ELECTRUM_OK); then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; \
	  else SUDO=none; fi; \
	  if [ "$$SUDO" != none ]; then echo "installing python3-electrum with apt"; \
	    ($$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends python3-electrum) >/dev/null || true; fi; \
	  $(ELECTRUM_OK) || { if [ "$(AMANAT_REQUIRE_ELECTRUM)" = 1 ]; then echo "python3-electrum is required"; exit 1; fi; \
	    echo "note: no python3-electrum: the Electrum interop test will skip"; }; \
	fi

qemu-if-possible: $(STAMP)
	@if [ "$(AMANAT_REQUIRE_QEMU)" = 1 ]; then \
	  $(MAKE) --no-print-directory qemu; \
	elif $(QEMU_TOOLS_OK); then \
	  $(MAKE) --no-print-directory qemu || echo "note: the QEMU image was not built; its tests will skip"; \
	else \
	  echo "note: no ARM toolchain or QEMU ($(QEMU_PACKAGES)): the QEMU tests will skip (make qemu installs them)"; \
	fi

# build/qemu/firmware.elf, rebuilt only when its inputs changed (tools/build_qemu.py).
qemu: $(STAMP) qemu-toolchain
	$(PY) tools/build_qemu.py

qemu-toolchain:
	@if ! ($(QEMU_TOOLS_OK)); then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=sudo; \
	  else echo "make qemu needs $(QEMU_PACKAGES): install them (Debian/Ubuntu: sudo apt-get install $(QEMU_PACKAGES))"; exit 1; fi; \
	  echo "installing $(QEMU_PACKAGES) with apt"; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(QEMU_PACKAGES); \
	fi

demo: $(STAMP)
	$(VENV)/bin/amanat demo

bench: $(STAMP)
	$(VENV)/bin/amanat bench --device-crypto --emulator

clean:
	rm -rf $(VENV) build *.egg-info host/*.egg-info .pytest_cache .hypothesis
