"""Training curves of a segmenter: loss per iteration and validation Dice, as one PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from benchmark.atomic import replace_atomically


def plot_training_curves(history: dict[str, list[float]], path: Path | str, title: str = "") -> Path:
    """Write loss (raw and moving average over 20 iterations) and validation Dice WT/TC/ET to `path` (PNG)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, (loss_axis, dice_axis) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss = np.asarray(history["loss"], dtype=float)
    loss_axis.plot(history["iteration"], loss, color="0.75", lw=0.8, label="batch")
    if loss.size >= 20:
        smooth = np.convolve(loss, np.ones(20) / 20, mode="valid")
        loss_axis.plot(history["iteration"][19:], smooth, color="C0", label="mean of 20")
    loss_axis.set(xlabel="iteration", ylabel="DiceCE loss", title="training loss")
    loss_axis.legend(frameon=False)
    for region in ("WT", "TC", "ET"):
        values = history.get(f"val_dice_{region}", [])
        if values:
            dice_axis.plot(history["val_iteration"], values, marker="o", ms=3, label=region)
    dice_axis.set(xlabel="iteration", ylabel="Dice", ylim=(0, 1), title="validation Dice (mean over subjects)")
    dice_axis.legend(frameon=False)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    replace_atomically(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)
    return path
