# Joliba: `make run` starts the platform on embedded defaults, `make test` runs every check and the
# whole suite, `make unit` the tests that need no service (seconds).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := orthanc orthanc-dicomweb orthanc-gdcm chromium gettext kannel kannel-extras
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export DJANGO_SETTINGS_MODULE := joliba.settings

KERAS_VENV := .venv-keras

.PHONY: run test unit lint hooks system-deps venv static messages keras-extra

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[test,ai]"
	touch $@

venv: $(VENV)/.installed

# The .mo files are built, never committed; rebuilt when a .po file changes.
PO_FILES := $(shell find platform -path '*/locale/*' -name '*.po' 2>/dev/null)
$(VENV)/.messages: $(VENV)/.installed $(PO_FILES)
	$(PY) manage.py compilemessages --ignore=.venv -v0
	touch $@

messages: $(VENV)/.messages

static: venv messages
	sh scripts/build_static.sh
	$(PY) manage.py collectstatic --noinput -v0

run: system-deps venv static
	$(PY) scripts/quickstart.py

# The pneumonia model importer needs TensorFlow: a venv of its own, so the platform's stays small.
$(KERAS_VENV)/.installed:
	python3 -m venv $(KERAS_VENV)
	$(KERAS_VENV)/bin/pip install -q --upgrade pip
	$(KERAS_VENV)/bin/pip install -q "tensorflow-cpu>=2.16" "tf2onnx>=1.16" "pneumonia-model-package==0.3.0" \
	  "pydicom>=3,<4" pillow numpy onnx onnxruntime
	touch $@

keras-extra: $(KERAS_VENV)/.installed

# The services the suite uses; CI has them, and so does a developer's machine (README).
TEST_SERVICES = DATABASE_URL="$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}" \
	CELERY_BROKER_URL="$${CELERY_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672//}"
# Tests that need no Orthanc, no Celery worker, no browser and no TensorFlow (the PostgreSQL test
# database they may use is created in seconds).
UNIT_MARKERS := not orthanc and not worker and not browser and not slow

# Every check runs even when one fails (one CI run says everything); pytest runs last, so that its
# summary line closes the output (coverage total just above it); make fails if any check failed.
test: export JOLIBA_KERAS_PYTHON ?= $(CURDIR)/$(KERAS_VENV)/bin/python
test: system-deps venv static keras-extra
	@failed=""; \
	$(VENV)/bin/ruff check . || failed="$$failed ruff-check"; \
	$(VENV)/bin/ruff format --check . || failed="$$failed ruff-format"; \
	$(VENV)/bin/mypy || failed="$$failed mypy"; \
	if [ -n "$$failed" ]; then echo "make test: failed:$$failed (the tests run anyway)"; fi; \
	$(TEST_SERVICES) $(VENV)/bin/pytest --cov --cov-report=term:skip-covered $(PYTEST_ARGS) \
	  || failed="$$failed pytest"; \
	test -z "$$failed"

unit: venv messages
	$(TEST_SERVICES) $(VENV)/bin/pytest -q -m "$(UNIT_MARKERS)" $(PYTEST_ARGS)

lint: venv
	@failed=""; \
	$(VENV)/bin/ruff check . || failed="$$failed ruff-check"; \
	$(VENV)/bin/ruff format --check . || failed="$$failed ruff-format"; \
	$(VENV)/bin/mypy || failed="$$failed mypy"; \
	if [ -n "$$failed" ]; then echo "make lint: failed:$$failed"; exit 1; fi

# Git hooks (.pre-commit-config.yaml): ruff check, ruff format and mypy from .venv, nothing fetched.
hooks: venv
	$(PIP) install -q "pre-commit>=3.5"
	$(VENV)/bin/pre-commit install
