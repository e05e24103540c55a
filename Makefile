# Joliba: `make run` starts the platform on embedded defaults, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := orthanc orthanc-dicomweb orthanc-gdcm chromium gettext
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

export DJANGO_SETTINGS_MODULE := joliba.settings

KERAS_VENV := .venv-keras

.PHONY: run test lint system-deps venv static keras-extra

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

static: venv
	sh scripts/build_static.sh
	$(PY) manage.py compilemessages --ignore=.venv -v0
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

test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
test: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/0
test: export JOLIBA_KERAS_PYTHON ?= $(CURDIR)/$(KERAS_VENV)/bin/python
test: system-deps venv static keras-extra
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
