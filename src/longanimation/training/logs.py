"""Training logs: ``log.csv`` (rewritten atomically), ``loss.png`` and optional TensorBoard events.

Columns are ``step, loss, lr, seconds`` followed by the stage's own metrics
(e.g. ``reward_mean`` of stage 3) in order of first appearance. On resume the
rows after the checkpoint's step (written by the interrupted run) are
dropped, so the log always describes the weights the run continues from.
The plot shows the loss and, when present, the mean reward (stage 3).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..atomic import atomic_file

LOG_NAME, PLOT_NAME, TENSORBOARD = "log.csv", "loss.png", "tensorboard"
FIRST_COLUMNS = ("step", "loss", "lr", "seconds")


class RunLog:
    """Rows of one run, persisted under ``output`` (main process only)."""

    def __init__(self, output: Path, *, start_step: int, tensorboard: bool) -> None:
        self.output = output
        self.rows: list[dict[str, float]] = []
        path = output / LOG_NAME
        if start_step > 0 and path.is_file():
            with open(path, newline="") as handle:
                for row in csv.DictReader(handle):
                    values = {key: float(value) for key, value in row.items() if value not in ("", None)}
                    if values.get("step", 0) <= start_step:
                        self.rows.append(values)
        self.writer = _tensorboard_writer(output / TENSORBOARD, start_step) if tensorboard else None

    def add(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        if self.writer is not None:
            step = int(row["step"])
            for key, value in row.items():
                if key != "step":
                    self.writer.add_scalar(f"train/{key}", value, step)

    def write(self) -> None:
        """Rewrite ``log.csv`` atomically."""
        columns = list(FIRST_COLUMNS)
        for row in self.rows:
            columns.extend(key for key in row if key not in columns)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({key: (int(value) if key == "step" else f"{value:.6g}") for key, value in row.items()})
        with atomic_file(self.output / LOG_NAME) as tmp:
            tmp.write_text(text.getvalue())
        if self.writer is not None:
            self.writer.flush()

    def plot(self) -> None:
        """Redraw ``loss.png`` (loss per step; mean reward in a second panel when logged)."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        panels = [key for key in ("loss", "reward_mean") if any(key in row for row in self.rows)]
        if not panels:
            return
        figure, axes = plt.subplots(len(panels), 1, figsize=(7, 3 * len(panels)), squeeze=False)
        for axis, key in zip(axes[:, 0], panels):
            points = [(row["step"], row[key]) for row in self.rows if key in row]
            axis.plot(*zip(*points), linewidth=1)
            axis.set_ylabel(key)
            axis.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("step")
        figure.tight_layout()
        with atomic_file(self.output / PLOT_NAME) as tmp:
            figure.savefig(tmp, format="png", dpi=100)
        plt.close(figure)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _tensorboard_writer(folder: Path, start_step: int):
    """A SummaryWriter when ``tensorboard`` is installed (events after ``start_step`` are purged), else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(folder), purge_step=start_step + 1 if start_step else None)
