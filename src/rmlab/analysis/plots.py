"""Figures drawn from metrics (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rmlab.utils.io import save_figure

STYLE_LABELS = ("concise", "detailed\nplain", "detailed\nmarkdown")


def style_substance_heatmap(matrix: np.ndarray, *, title: str, path: Path) -> Path:
    """RM-Bench Fig. 2-style heatmap: rows = chosen style, columns = rejected style, accuracy in %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = 100 * np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(m, vmin=0, vmax=100, cmap="viridis")
    for i in range(3):
        for j in range(3):
            ax.text(j, i, f"{m[i, j]:.1f}", ha="center", va="center", color="white" if m[i, j] < 60 else "black")
    ax.set_xticks(range(3), STYLE_LABELS)
    ax.set_yticks(range(3), STYLE_LABELS)
    ax.set_xlabel("rejected response style")
    ax.set_ylabel("chosen response style")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    try:
        return save_figure(path, fig)
    finally:
        plt.close(fig)


def bar_chart(values: dict[str, float], *, title: str, ylabel: str, path: Path) -> Path:
    """One bar per key, values in [0, 1] shown in %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 0.45 * len(values) + 1.5), 3.6))
    ax.bar(range(len(values)), [100 * v for v in values.values()], color="#4477aa")
    ax.set_xticks(range(len(values)), list(values), rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"{ylabel} (%)")
    ax.set_title(title, fontsize=9)
    try:
        return save_figure(path, fig)
    finally:
        plt.close(fig)
