"""Everything that asks another model to label or compare a policy's generations: the local or endpoint LLM judges
(``judges``: pairwise preferences, as AlpacaEval asks them), the Arena-Hard-Auto v0.1 stage (``arena_hard``:
answers, verdicts against the baseline, raw and style-controlled scores), the XSTest refusal labelers
(``refusal``, and their agreement with the authors' labels in ``refusal_fidelity``) and the ToxiGen classifier
(``toxicity``)."""
