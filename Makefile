# keras_glimpse developer commands. Everything runs inside .venv (created on demand).
#   make demo        train and visualise the RAM demo offline
#   make test        fast tests (not marked slow)
#   make test-slow   the long learning runs
#   make bench       every benchmarks/*.py
#   make bazel-test  the Bazel py_test targets (offline; installs bazel-bootstrap if missing)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The install stamp is keyed on setup.py: editing it reinstalls, otherwise `install` is a no-op.
STAMP  := $(VENV)/.installed-$(shell cksum setup.py | cut -d' ' -f1)
# Two xdist workers beat one process on 2 cores once the suite is more than a
# few files (each worker pays the ~10 s TensorFlow import once). PYTEST_WORKERS=0 runs sequentially.
PYTEST_WORKERS ?= 2
ifeq ($(PYTEST_WORKERS),0)
XDIST :=
else
XDIST := -n $(PYTEST_WORKERS)
endif
PYTEST := TF_CPP_MIN_LOG_LEVEL=2 KERAS_GLIMPSE_OFFLINE=1 $(PY) -m pytest -p no:cacheprovider

.PHONY: install demo test test-slow bench bazel-test readme clean

install: $(STAMP)

$(STAMP): setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import setuptools, wheel" 2>/dev/null || $(PIP) install -q setuptools wheel
	$(PIP) install -q --no-build-isolation -e ".[viz,data,test]"
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: install
	$(PY) -m apps.demo

# pytest exits 5 when nothing is collected; that is not a failure here.
test: install
	$(PYTEST) -m "not slow" $(XDIST) -q tests || test $$? -eq 5

test-slow: install
	$(PYTEST) -m slow -q tests || test $$? -eq 5

bench: install
	@set -e; found=0; for f in benchmarks/*.py; do \
	  [ -e "$$f" ] || continue; found=1; echo "== $$f"; \
	  TF_CPP_MIN_LOG_LEVEL=2 $(PY) "$$f"; done; \
	  [ $$found = 1 ] || echo "no benchmarks/*.py yet"

readme: install
	$(PY) tools/update_readme.py

# Bazel 4.2.3 (Debian's bazel-bootstrap) runs offline thanks to the stand-in
# repositories in third_party/; the tests use the venv's Python via PATH.
BAZEL ?= bazel
VENV_BIN := $(abspath $(VENV))/bin
BAZEL_PATH := $(VENV_BIN):/usr/local/bin:/usr/bin:/bin
bazel-test: install
	@command -v $(BAZEL) >/dev/null 2>&1 || { \
	  echo "installing bazel-bootstrap (Bazel 4.2.3)"; \
	  SUDO=$$(command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get install -y bazel-bootstrap || { $$SUDO apt-get update && $$SUDO apt-get install -y bazel-bootstrap; }; }
	PATH="$(BAZEL_PATH)" $(BAZEL) --batch test //:fast_tests \
	  --action_env=PATH="$(BAZEL_PATH)" --test_env=PATH="$(BAZEL_PATH)" \
	  --test_env=HOME --test_env=KERAS_GLIMPSE_OFFLINE=1 --test_env=TF_CPP_MIN_LOG_LEVEL=2 \
	  --python_path="$(VENV_BIN)/python3" --test_output=errors --local_test_jobs=1

clean:
	rm -rf build dist *.egg-info .pytest_cache
