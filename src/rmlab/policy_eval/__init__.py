"""Policy (downstream) evaluation: GSM8k, BBH, HumanEval+, MBPP+, ToxiGen and XSTest (:mod:`.tasks`), generated code
run in a sandbox (:mod:`.sandbox`), and the evaluation driver (:mod:`.evaluate`)."""
