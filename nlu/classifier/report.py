"""The confusion-matrix picture shown in the admin."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on servers and workers; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Counts are printed in the cells only while they stay legible.
ANNOTATE_UP_TO = 30


def confusion_png(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> bytes:
    """A PNG of the confusion matrix, rows normalised (recall), readable up to ~80 intents."""
    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    side = min(max(5.0, 0.22 * n + 2.5), 24.0)
    font = 9 if n <= 20 else max(4.0, 9 - n / 16)
    fig, ax = plt.subplots(figsize=(side, side), dpi=100)
    try:
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), labels=list(labels), rotation=90, fontsize=font)
        ax.set_yticks(range(n), labels=list(labels), fontsize=font)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion, cross-validated")
        if n <= ANNOTATE_UP_TO:
            for (i, j), count in np.ndenumerate(counts):
                if count:
                    color = "white" if share[i, j] > 0.5 else "black"
                    ax.text(
                        j, i, f"{count:g}", ha="center", va="center", fontsize=font, color=color
                    )
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
