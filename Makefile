# The two commands: `make demo` (the main job) and `make test`. Both create or reuse .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APP_REQUIREMENTS := $(wildcard services/*/requirements.txt)

.PHONY: demo test lint up package benchmark clean

$(STAMP): pyproject.toml requirements-dev.txt requirements-checkov.txt $(APP_REQUIREMENTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# checkov in an environment of its own (its pins of boto3, packaging and networkx clash with the project's),
	@# installed alongside the project's to save half a minute.
	@test -x $(VENV)/checkov/bin/python || $(BIN)/python -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt & \
	checkov=$$!; \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt \
		$(addprefix -r ,$(APP_REQUIREMENTS)) && \
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --dest $(VENV)/wheelhouse \
		$(addprefix -r ,$(APP_REQUIREMENTS)); \
	project=$$?; wait $$checkov && exit $$project
	@# (the wheelhouse above: the apps' wheels, so that `chalice package` and the packaging tests run offline)
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/amci local demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=15

up: $(STAMP)
	$(BIN)/amci local up

package: $(STAMP)
	$(BIN)/amci package

benchmark: $(STAMP)
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) .local build .pytest_cache .ruff_cache
