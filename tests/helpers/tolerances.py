"""Every numeric tolerance of the tests, derived from the dtype and the size of the computation, never read off one
machine's output.

Two rounding-error models (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002):

- **worst case** (Lemma 3.1): n sequential roundings change a value by at most ``gamma_n = n u / (1 - n u)`` relative
  to the sum of the magnitudes involved, ``u`` the unit roundoff (half the machine epsilon). Used for closed forms in
  float64, where it is tight enough to be useful.
- **probabilistic** (Higham & Mary 2019, SIAM J. Sci. Comput. 41(5):A2815, Thm. 3.1): an inner product of length n
  is off by at most ``lambda * sqrt(n) * u`` times ``sum |x_i y_i|``, except with probability at most
  ``2 n exp(-lambda^2 (1 - u)^2 / 2)``; with ``lambda = 8`` that is below 3e-14 n, i.e. never in practice. Used for
  model forwards, whose worst case (millions of roundings) says nothing.

Two runs of "the same" computation (other batch size, padding, packing, CPU kernel path, process count) each carry
such an error, so their difference is bounded by twice one run's bound.

A model forward is bounded along its longest chain of dependent reductions (:func:`forward_chain`): per layer the
attention logits (head_dim), the softmax sum and the value mix (sequence length), the output, gate/up and down
projections (hidden, hidden, intermediate) and two RMS norms (hidden); then the final norm, and the read-out (a
hidden-wide head for a classifier, the vocabulary-wide log-softmax for a log-probability). Errors met along the chain
add to first order. Activations entering each reduction are O(1) after the RMS norms, so the magnitude a caller
passes is ``max(1, |value|)``; a sum of T per-token log-probabilities carries T per-token errors.
"""

from __future__ import annotations

import math

import numpy as np
import torch

LAMBDA = 8.0  # Higham & Mary's confidence parameter (module docstring)


def unit_roundoff(dtype) -> float:
    """u = eps / 2 of a torch or numpy floating dtype."""
    if isinstance(dtype, torch.dtype):
        return torch.finfo(dtype).eps / 2
    return float(np.finfo(dtype).eps) / 2


def worst_case(n_ops: int, magnitude: float = 1.0, dtype=np.float64) -> float:
    """gamma_n times ``magnitude``: the most ``n_ops`` sequential roundings can move a result (Higham Lemma 3.1)."""
    nu = n_ops * unit_roundoff(dtype)
    assert nu < 1, "gamma_n is defined for n u < 1"
    return nu / (1 - nu) * max(1.0, abs(magnitude))


def probabilistic(n: int, magnitude: float = 1.0, dtype=torch.float32) -> float:
    """lambda sqrt(n) u times ``magnitude``: one length-n reduction (Higham & Mary 2019, Thm. 3.1)."""
    return LAMBDA * math.sqrt(n) * unit_roundoff(dtype) * max(1.0, abs(magnitude))


def forward_chain(config, seq_len: int, readout: str) -> float:
    """Sum of sqrt(n) over the longest chain of dependent reductions of one decoder forward (module docstring).

    :param readout: ``"classifier"`` (a hidden-wide score head) or ``"logprob"`` (log-softmax over the vocabulary).
    """
    hidden, inter = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or hidden // config.num_attention_heads
    per_layer = (
        math.sqrt(head_dim)  # q.k
        + 2 * math.sqrt(seq_len)  # softmax normaliser, attention-weighted values
        + 3 * math.sqrt(hidden)  # o_proj, gate and up projections
        + math.sqrt(inter)  # down projection
        + 2 * math.sqrt(hidden)  # input and post-attention RMS norms
    )
    head = math.sqrt(hidden) + (math.sqrt(hidden) if readout == "classifier" else math.sqrt(config.vocab_size))
    return config.num_hidden_layers * per_layer + math.sqrt(hidden) + head  # + final norm


def forward_diff(
    config, seq_len: int, readout: str, *, magnitude: float = 1.0, tokens: int = 1, dtype=torch.float32
) -> float:
    """Bound on the difference between two forwards of the same input that reduce in different orders (batching,
    padding, packing, kernel path, process count): twice one forward's probabilistic bound along
    :func:`forward_chain`, times ``tokens`` for a sum of per-token values."""
    chain = forward_chain(config, seq_len, readout)
    return 2 * tokens * LAMBDA * chain * unit_roundoff(dtype) * max(1.0, abs(magnitude))


def adam_step_bound(betas: tuple[float, float] = (0.9, 0.999)) -> float:
    """The most one Adam step moves a weight, in units of the learning rate (Kingma & Ba 2015, Sec. 2.1:
    ``(1 - b1) / sqrt(1 - b2)`` where that exceeds 1, else 1)."""
    b1, b2 = betas
    return max(1.0, (1 - b1) / math.sqrt(1 - b2))


def training_agreement(
    a: dict, b: dict, init: dict, *, lr: float, steps: int, betas: tuple[float, float] = (0.9, 0.999)
) -> dict:
    """Whether two Adam trainings of the same initial weights on the same batches agree, up to reduction order.

    Adam divides by the gradient's running RMS, so a rounding-level change of a gradient moves a weight by up to a
    whole step (a sign flip) where that gradient is within its rounding error of zero, and by a rounding-level
    amount elsewhere. Two agreeing runs therefore (1) differ nowhere by more than two runs' largest possible
    displacement, ``2 * steps * adam_step_bound(betas) * lr`` (``lr`` the schedule's peak), and (2) differ by more than a tenth of one step (``lr / 10``) only
    on those near-zero-gradient weights, a vanishing share of the weights training moved: at most 1% of them is
    allowed. A run that skipped or repeated a batch differs by about one step on nearly every moved weight.

    :return: ``{"max_diff", "bound", "moved", "share_over_tenth_step", "agree"}``.
    """
    assert a.keys() == b.keys() == init.keys()
    max_diff, moved, over = 0.0, 0, 0
    for k, value in a.items():
        wa, wb, w0 = value.double(), b[k].double(), init[k].double()
        diff = (wa - wb).abs()
        max_diff = max(max_diff, float(diff.max()))
        trained = ((wa - w0) != 0) | ((wb - w0) != 0)
        moved += int(trained.sum())
        over += int((diff[trained] > lr / 10).sum())
    bound = 2 * steps * adam_step_bound(betas) * lr
    share = over / moved if moved else 0.0
    return {
        "max_diff": max_diff,
        "bound": bound,
        "moved": moved,
        "share_over_tenth_step": share,
        "agree": moved > 0 and max_diff <= bound and share <= 0.01,
    }
