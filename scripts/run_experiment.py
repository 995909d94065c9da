"""Run a multi-stage experiment (train, evaluate, correlate; finished stages reused):
an alias of `rmlab run-experiment experiment=dpo_vs_classifier`."""

from rmlab.cli import alias

if __name__ == "__main__":
    alias("run_experiment")
