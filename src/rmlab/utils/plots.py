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


def training_curves(history: list[dict], keys: dict[str, str], *, path: Path, title: str) -> Path:
    """One small panel per logged key (``keys``: log key -> label), against the logged step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = {k: v for k, v in keys.items() if any(k in h for h in history)}
    fig, axes = plt.subplots(1, max(1, len(present)), figsize=(3.0 * max(1, len(present)), 2.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], present.items()):
        rows = [(h.get("step", i), h[key]) for i, h in enumerate(history) if key in h]
        ax.plot([s for s, _ in rows], [v for _, v in rows], marker=".", lw=1)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("update", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    try:
        return save_figure(path, fig)
    finally:
        plt.close(fig)


GROUP_COLOURS = {"math": "tab:blue", "code": "tab:orange", "safety": "tab:green"}


def _p(p) -> str:
    return "-" if p is None else f"{p:.2f}"  # no Fisher-z p below 4 effective points


def correlation_scatter(panels: dict, path: Path) -> Path:
    """RM-Bench Fig. 5-style scatter, one panel per benchmark: one colour per task group, the least-squares line
    over all points, and Pearson r and p in the legend. ``panels[benchmark] = (x, y, groups, report)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.8), squeeze=False)
    for ax, (bench, (x, y, groups, rep)) in zip(axes[0], panels.items()):
        for g in dict.fromkeys(groups):
            m = np.array([gg == g for gg in groups])
            ax.scatter(x[m], y[m], color=GROUP_COLOURS.get(g, "grey"), label=g, s=36)
        slope, icept = np.polyfit(x, y, 1)
        xs = np.linspace(x.min(), x.max(), 2)
        ax.plot(
            xs,
            slope * xs + icept,
            color="black",
            lw=1,
            label=f"r = {rep['pearson_r']:.2f}, p = {_p(rep['pearson_p'])} (n = {rep['n']})",
        )
        ax.set_xlabel(f"{bench} score" + ("" if rep["standardise_x"] == "none" else f" ({rep['standardise_x']} z)"))
        ax.set_ylabel("policy score")
        ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        return save_figure(path, fig)
    finally:
        plt.close(fig)
