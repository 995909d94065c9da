"""Downstream tasks of the RM-Bench correlation study (section 5.2), registered by ``task.kind``."""

from rmlab.evaluation.tasks.bbh import BBH
from rmlab.evaluation.tasks.code import HumanEvalPlus, MBPPPlus
from rmlab.evaluation.tasks.gsm8k import GSM8k
from rmlab.evaluation.tasks.safety import ToxiGen, XSTest

TASKS = {"gsm8k": GSM8k, "bbh": BBH, "humaneval_plus": HumanEvalPlus, "mbpp_plus": MBPPPlus, "toxigen": ToxiGen,
         "xstest": XSTest}
