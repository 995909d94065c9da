"""Diagnostics: measurements about the lab's code and models that no experiment's result depends on.

Speed benches (``scoring_throughput``, ``training_throughput``, ``generation_bench``: each against the peer's own
code in the same run), the GPU readiness check (``gpu_check`` and its ``gpu_check_parts``) and the reward-signal
diagnostic (``reward_signal``: the spread of a reward model's scores over a policy's own samples). The floor above
``pipelines`` (the GPU check runs stages): they may use every package below; the core packages keep only what a
run needs.
"""
