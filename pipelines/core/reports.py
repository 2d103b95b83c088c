"""PNG plots written next to the DVC plot data, for people without `dvc plots`."""

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipelines.core.io import atomic_write  # noqa: E402


def save_figure(fig, path):
    """The PNG written beside `path` and moved into place, as every output is."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110), mode="wb")
    plt.close(fig)


def bar_chart(labels, values, path, title, ylabel):
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(labels) + 2), 3.5))
    bars = ax.bar(labels, values, color="#4C72B0")
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def confusion_heatmap(labels, matrix, path, title):
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(0.6 * len(labels) + 3, 0.6 * len(labels) + 2.5))
    # Row-normalised colours so rare classes are visible; cells show counts.
    rows = matrix.sum(axis=1, keepdims=True)
    ax.imshow(matrix / np.maximum(rows, 1), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def line_chart(xs, series, path, title, xlabel):
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.2))
    for ax, (name, ys) in zip(np.atleast_1d(axes), series.items()):
        ax.plot(xs, ys, marker="o", markersize=3)
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def write_rows_csv(path, header, rows):
    """A CSV file for `dvc plots` (header row first)."""
    import csv

    def write(f):
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)

    atomic_write(path, write, newline="", encoding="utf-8")


def write_confusion(plots, gold, pred, labels, matrix, title):
    """plots/confusion.csv (one gold,predicted row per item, for `dvc plots`) and confusion.png."""
    write_rows_csv(plots / "confusion.csv", ["gold", "predicted"], zip(gold, pred))
    confusion_heatmap(labels, matrix, plots / "confusion.png", title)


def thin(xs, ys, points=400):
    """At most `points` points of a curve, always keeping both ends."""
    if len(xs) <= points:
        return xs, ys
    idx = np.unique(np.linspace(0, len(xs) - 1, points).round().astype(int))
    return xs[idx], ys[idx]
