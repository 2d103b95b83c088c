"""How far a model's confidences can be trusted, for every task: reliability bins, expected
calibration error and precision/recall over a `min_score` threshold, from each prediction's
confidence and whether it was right (NER: entities; sentiment: documents)."""

import numpy as np

from pipelines.core.reports import save_figure, write_rows_csv


def reliability_bins(scores, correct, bins=10):
    """Equal-width confidence bins: rows (low, high, count, mean score, fraction correct)."""
    scores, correct = np.asarray(scores, float), np.asarray(correct, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # The top bin is closed, so a score of exactly 1 lands in it.
    which = np.minimum(np.searchsorted(edges, scores, side="right") - 1, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        rows.append((float(edges[b]), float(edges[b + 1]), n,
                     float(scores[inside].mean()) if n else None, float(correct[inside].mean()) if n else None))
    return rows


def expected_calibration_error(rows):
    """Sum over bins of (share of entities) x |fraction correct - mean confidence|."""
    total = sum(n for _, _, n, _, _ in rows)
    if not total:
        return 0.0
    return float(sum(n / total * abs(acc - conf) for _, _, n, conf, acc in rows if n))


def threshold_curve(scores, correct, num_gold, thresholds=None):
    """(min_score, kept, precision, recall, f1) rows: the entities scored >= min_score kept."""
    scores, correct = np.asarray(scores, float), np.asarray(correct, bool)
    if thresholds is None:
        thresholds = np.round(np.linspace(0.0, 0.99, 100), 2)
    rows = []
    for t in thresholds:
        kept = scores >= t
        tp, n = int(correct[kept].sum()), int(kept.sum())
        p = tp / n if n else 1.0
        r = tp / num_gold if num_gold else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        rows.append((float(t), n, round(p, 5), round(r, 5), round(f, 5)))
    return rows


def reliability_chart(rows, ece, path, title, what):
    import matplotlib.pyplot as plt

    fig, (ax, hist) = plt.subplots(2, 1, figsize=(4.5, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    filled = [(conf, acc) for _, _, n, conf, acc in rows if n]
    if filled:
        ax.plot(*zip(*filled), marker="o", markersize=4, color="#4C72B0", label=what)
    ax.set_ylabel("fraction correct")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{title} (ECE {ece:.3f})")
    lows = [low for low, _, _, _, _ in rows]
    hist.bar(lows, [n for _, _, n, _, _ in rows], width=rows[0][1] - rows[0][0], align="edge", color="#4C72B0")
    hist.set_yscale("log")
    hist.set_xlabel("confidence")
    hist.set_ylabel(what)
    fig.tight_layout()
    save_figure(fig, path)


def threshold_chart(rows, path, title):
    import matplotlib.pyplot as plt

    t = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    for column, name in ((2, "precision"), (3, "recall"), (4, "F1")):
        ax.plot(t, [r[column] for r in rows], label=name)
    ax.set_xlabel("min_score")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def calibration_report(scores, correct, num_gold, plots, what="entities", bins=10):
    """Writes plots/reliability.{csv,png} and plots/min_score.{csv,png}; returns the summary.
    `num_gold` is what recall counts against (gold entities; for a classifier, the documents)."""
    rows = reliability_bins(scores, correct, bins)
    ece = expected_calibration_error(rows)
    write_rows_csv(plots / "reliability.csv", ["confidence", "fraction_correct", what],
                   ((round(conf, 5), round(acc, 5), n) for _, _, n, conf, acc in rows if n))
    reliability_chart(rows, ece, plots / "reliability.png", f"Confidence of {what} (test)", what)
    curve = threshold_curve(scores, correct, num_gold)
    write_rows_csv(plots / "min_score.csv", ["min_score", what, "precision", "recall", "f1"], curve)
    threshold_chart(curve, plots / "min_score.png", f"{what.capitalize()} kept at score >= min_score (test)")
    return {"ece": round(ece, 5), "count": len(scores),
            "mean_score": round(float(np.mean(scores)), 5) if len(scores) else None,
            "fraction_correct": round(float(np.mean(correct)), 5) if len(correct) else None,
            "bins": [{"low": low, "high": high, "count": n, "confidence": None if conf is None else round(conf, 5),
                      "fraction_correct": None if acc is None else round(acc, 5)} for low, high, n, conf, acc in rows]}
