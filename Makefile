# reinforce-lab: every target creates .venv and installs the pinned dependencies when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
EXTRAS := mujoco,box2d,video,report,sweeps,test
ARGS   ?=
EXP    ?=

# envpool (env.vectorization=envpool) is optional and large (~700 MB of env assets): CI installs it,
# laptops need not; its tests skip without it.
install-envpool: $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[$(EXTRAS),envpool]"

.PHONY: install install-envpool train test test-no-tricks test-slow test-slurm bench reproduce clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo ">> installing pinned dependencies into $(VENV) (first time: about a minute)"
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

train: $(STAMP)
	$(BIN)/rlab-train $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(ARGS)

# The same suite with every process trick off (src/reinforce_lab/tricks/): the plain paths stay true.
test-no-tricks: $(STAMP)
	RLAB_TRICKS=off $(BIN)/python -m pytest -q $(ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow $(ARGS)

# Sweeps on a real SLURM cluster (preemption, time limits, cancelled and killed jobs), slow ones
# included: needs `scripts/slurm-local.sh up` (as root, Debian) or a cluster of your own; ~6 min.
test-slurm: $(STAMP)
	$(BIN)/python -m pytest -q -m slurm $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

reproduce: $(STAMP)
	@test -n "$(EXP)" || { echo "usage: make reproduce EXP=<name>  (one of: $$(cd experiments && ls -d */ | tr -d / | tr "\n" " "))"; exit 2; }
	@test -x experiments/$(EXP)/run.sh || { echo "error: EXP=$(EXP) is not an experiment; allowed: $$(cd experiments && ls -d */ | tr -d / | tr "\n" " ")"; exit 2; }
	PATH="$(CURDIR)/$(BIN):$$PATH" bash experiments/$(EXP)/run.sh

clean:
	rm -rf outputs multirun .pytest_cache
