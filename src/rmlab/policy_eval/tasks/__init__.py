"""Downstream tasks (the six of the RM-Bench correlation study, section 5.2, IFEval, MATH and AlpacaEval), registered by ``task.kind``."""

from rmlab.policy_eval.tasks.alpaca_eval import AlpacaEval
from rmlab.policy_eval.tasks.arithmetic import Arithmetic
from rmlab.policy_eval.tasks.bbh import BBH
from rmlab.policy_eval.tasks.code import HumanEvalPlus, MBPPPlus
from rmlab.policy_eval.tasks.gsm8k import GSM8k
from rmlab.policy_eval.tasks.ifeval import IFEval
from rmlab.policy_eval.tasks.math import MATH
from rmlab.policy_eval.tasks.safety import ToxiGen, XSTest

TASKS = {
    "arithmetic": Arithmetic,
    "gsm8k": GSM8k,
    "bbh": BBH,
    "humaneval_plus": HumanEvalPlus,
    "mbpp_plus": MBPPPlus,
    "toxigen": ToxiGen,
    "xstest": XSTest,
    "ifeval": IFEval,
    "math": MATH,
    "alpaca_eval": AlpacaEval,
}
