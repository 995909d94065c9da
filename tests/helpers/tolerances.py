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


# ---- iterative fits ------------------------------------------------------------------------------------------------
# rmlab.metrics.arena_hard.fit_logistic minimises the mean log-loss (plus ridge |beta|^2 / 2) and raises unless the
# final gradient has max-norm <= 1e-8: that certified stop, not the (usually far smaller) Newton decrement it breaks
# on, is what these bounds use. To first order beta - beta* = H^+ g, H the Hessian at beta.

BT_GRAD_MAX = 1e-8  # fit_logistic's convergence check: max |gradient| of the mean objective


def bradley_terry_star(total_rows: float, model_rows: float, grad_max: float = BT_GRAD_MAX) -> float:
    """Bound on a model's win rate against the baseline (in %) from an unpenalised Bradley-Terry fit in which every
    battle has the baseline on one side. The model's gradient component is (model_rows / total_rows) L'(D), L the
    mean log-loss over its own rows as a function of D, its log10-odds gap to the baseline, with L'' = ln(10)^2 q,
    q = p (1 - p); so D is within grad_max (total_rows / model_rows) / (ln(10)^2 q) of its optimum, and the win
    rate 100 / (1 + 10^-D), whose slope is 100 ln(10) q, within 100 grad_max (total_rows / model_rows) / ln 10."""
    return 100 * grad_max * total_rows / (model_rows * math.log(10))


def bradley_terry_star_elo(total_rows: float, model_rows: float, p: float, grad_max: float = BT_GRAD_MAX) -> float:
    """The same fit's bound on the Elo gap 400 D (see :func:`bradley_terry_star`), p the model's win rate / 100."""
    return 400 * grad_max * total_rows / (model_rows * math.log(10) ** 2 * p * (1 - p))


def logistic_hessian_floor(x: np.ndarray, beta: np.ndarray, ridge: float = 0.0, n_models: int = 0) -> float:
    """Smallest eigenvalue of the mean log-loss Hessian X^T diag(p (1 - p)) X / rows + ridge I at beta, on the
    complement of v = the all-ones direction of the first ``n_models`` (model) columns. Every row has +ln 10 and
    -ln 10 in two model columns, so X v = 0: the loss gradient never has a v component, and a fit started at 0
    (ours by Newton, sklearn's by L-BFGS) never moves along v; its error lies in the complement."""
    p = 1 / (1 + np.exp(-(x @ beta)))
    hess = (x.T * (p * (1 - p))) @ x / len(x) + ridge * np.eye(x.shape[1])
    if n_models:
        v = np.zeros(x.shape[1])
        v[:n_models] = 1 / math.sqrt(n_models)
        proj = np.eye(x.shape[1]) - np.outer(v, v)
        hess = proj @ hess @ proj
    eig = np.linalg.eigvalsh(hess)
    return float(eig[eig > eig.max() * 1e-9].min())


def logistic_coef_error(
    x: np.ndarray, beta: np.ndarray, ridge: float = 0.0, n_models: int = 0, grad_max: float = BT_GRAD_MAX
) -> float:
    """||beta - beta*||_2 <= ||g||_2 / mu <= sqrt(k) grad_max / mu (first order), k coefficients,
    mu = :func:`logistic_hessian_floor`."""
    return math.sqrt(x.shape[1]) * grad_max / logistic_hessian_floor(x, beta, ridge, n_models)


def win_rate_from_coef_error(coef_error: float) -> float:
    """A win rate 100 / (1 + 10^-(b_m - b_base)) moves by at most its largest slope 100 ln(10) / 4 times
    |d b_m - d b_base| <= sqrt(2) ||d beta||_2."""
    return 100 * math.log(10) / 4 * math.sqrt(2) * coef_error


def pearson_diff(x, y) -> float:
    """Bound on the difference of two float64 evaluations of Pearson's r (the moment formula here, scipy's
    normalise-then-dot there) of the same n points. Per evaluation: means (n roundings), centring (1), the dot
    products and norms (n), a square root, a product and a division: <= 3n + 6 roundings (Higham Lemma 3.1). The
    dot product's error is relative to |xc| |yc| (Cauchy-Schwarz), i.e. absolute in r; a centred value carries an
    error of up to (|x_i| + |mean|) u, which in r becomes up to 4 max|x| / std(x) times u: that ratio (>= 1) is
    the magnitude. Two evaluations: twice."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ratio = max(np.abs(x).max() / x.std(), np.abs(y).max() / y.std())
    return 2 * worst_case(3 * len(x) + 6, 4 * ratio)


def fisher_interval_diff(r: float, n: int) -> float:
    """Bound on the difference of two float64 evaluations of the 95% Fisher interval tanh(atanh(r) -/+ q se) of the
    same r over n points (ours and scipy's): per evaluation se = 1/sqrt(n - 3) (2 roundings), q (the normal
    quantile, within 1 ulp: 2), the product and the sum (2), tanh (within 1 ulp: 2), of magnitude
    |atanh r| + q se with q < 2; tanh' <= 1 carries the argument's error unamplified. Two evaluations: 16."""
    return worst_case(16, abs(math.atanh(r)) + 2 / math.sqrt(n - 3))
