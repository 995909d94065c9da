"""rmlab: a reproducible lab for reward-model research (RM-Bench, RewardBench, RewardMATH).

Stages read and write files (model directories, score files, ``metrics.json``); ``scripts/`` holds one thin
Hydra entry point per stage, and ``conf/`` + ``experiments/`` hold every setting.
"""

__version__ = "0.1.0"
