# The two commands of the README. Both create .venv when missing, install PyTorch (CPU build),
# the platform and every first-party domain under domains/ in editable mode, then run; `test`
# (and `install`) add the test and align extras, which the demo does not need (14 s saved).
# A second run reuses .venv: the install step re-runs only when a pyproject.toml changes.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.noa-installed
EXTRAS  := $(VENV)/.noa-extras-installed
DOMAINS := $(patsubst %/pyproject.toml,%,$(wildcard domains/*/pyproject.toml))
TORCH   := torch==2.13.0

.PHONY: demo test install clean

install: $(EXTRAS)

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(DOMAINS))
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(PY) -m pip install --quiet --disable-pip-version-check -e . $(addprefix -e ,$(DOMAINS))
	@touch $@

$(EXTRAS): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,align]'
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/noa domains list
	$(VENV)/bin/noa train reaction-diffusion --preset quick

# pytest exits 5 when it collects no test; make treats any non-zero exit as failure.
test: $(EXTRAS)
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
