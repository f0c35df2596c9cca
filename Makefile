# Everything goes into .venv; Debian packages the build needs are installed
# when missing (with sudo unless root).
SHELL := /bin/bash
PYTHON ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := $(VENV)/.stamps
DEB_PACKAGES := cmake g++ make python3-dev python3-venv xeus-dev xtl-dev nlohmann-json3-dev cppzmq-dev \
	libzmq3-dev pybind11-dev
# For the tests: an rpyc 5.x device (Debian's own rpyc), network namespaces,
# a browser for JupyterLab (tests/test_browser.py drives it with Playwright).
DEB_PACKAGES += python3-rpyc iproute2 chromium
# tests/h265-rtsp-server's H.265 encoder, x265enc (the fixtures' install-media-deps adds the RTSP server).
DEB_PACKAGES += gstreamer1.0-plugins-bad
CXX_SOURCES := $(wildcard xrpyc/*.cpp xrpyc/*.hpp cmake/*.cmake) CMakeLists.txt
PYTEST_ARGS ?=

.PHONY: all deps demo test lab bench dist wheel clean

all: $(STAMPS)/kernelspec

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "Installing Debian packages:" $$missing; \
	    sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$sudo apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(PY): | deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMPS)/build-tools: | $(PY)
	$(PY) -m pip install -q 'scikit-build-core>=0.10' 'pybind11>=2.10'
	@mkdir -p $(STAMPS) && touch $@

# The same path as `pip install .` (scikit-build-core runs CMake), editable:
# the Python package is used from python/, the kernel executable goes to
# .venv/bin and its kernelspec to .venv/share/jupyter/kernels/xrpyc. After a
# C++ change this re-runs, and CMake rebuilds only what changed (build/).
$(STAMPS)/kernelspec: pyproject.toml $(CXX_SOURCES) python/xrpyc/install.py | $(STAMPS)/build-tools deps
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PY) -m pip install -q --no-build-isolation -e '.[test]'
	@# As a wheel install would: a kernel (started with PYTHONDONTWRITEBYTECODE or not) then
	@# starts without compiling its modules.
	$(PY) -m compileall -q python/xrpyc
	@touch $@

demo: all
	$(PY) examples/run_notebook.py examples/01-getting-started.ipynb

MEDIA_DEPS := ../shared/fixtures/install-media-deps
# JupyterHub's proxy for tests/test_jupyterhub.py, from npm (node and npm are on the machine), project-local.
HUB_PROXY := build/node_modules/.bin/configurable-http-proxy

$(HUB_PROXY):
	npm install --prefix build --no-save --no-audit --no-fund --loglevel=error configurable-http-proxy@5.3.0

test: all $(HUB_PROXY)
	@# The RTSP and MJPEG test servers' Debian packages (the video tests skip without them).
	@if [ -x $(MEDIA_DEPS) ]; then $(MEDIA_DEPS); fi
	$(VENV)/bin/ruff check -q python tests bench examples
	$(PY) recipe/check_conda_files.py
	$(PY) -m pytest $(PYTEST_ARGS)

lab: all
	$(VENV)/bin/jupyter lab examples/

$(STAMPS)/bench: | $(STAMPS)/kernelspec
	$(PY) -m pip install -q ipykernel xeus-python
	@touch $@

bench: all $(STAMPS)/bench
	@if [ -x $(MEDIA_DEPS) ]; then $(MEDIA_DEPS); fi
	$(PY) bench/bench_kernels.py
	$(PY) bench/bench_video.py
	$(PY) bench/bench_completion.py
	$(PY) bench/bench_device.py
	$(PY) bench/bench_interrupt.py
	$(PY) bench/bench_first_cell.py
	$(PY) bench/bench_host.py
	$(PY) bench/bench_boards.py
	$(PY) bench/bench_widgets.py

# manylinux wheels for CPython 3.11-3.13 in dist/ (cmake/build-wheel.sh); `make wheel`
# adds the proof: the cp312 one in a clean venv, Debian's xeus/zmq/ssl hidden (also part
# of `make test` once dist/ has it).
dist: all
	cmake/build-wheel.sh

wheel: dist
	$(PY) -m pytest -m wheel tests/test_wheel.py

clean:
	rm -rf build dist $(VENV)
