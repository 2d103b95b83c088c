"""Sentiment diagnostics for the notebooks (pure Python + numpy, unit-tested): attention display,
confident mistakes and a calibration table."""

from __future__ import annotations

import html

import numpy as np

def attention_html(pairs) -> str:
    """Tokens shaded by attention weight: alpha = weight / max weight.

    ``pairs``: ``[(token, weight)]`` with finite, non-negative weights. All
    alphas are 0 when every weight is 0. Hovering shows the weight.
    """
    pairs = [(str(tok), float(w)) for tok, w in pairs]
    for tok, w in pairs:
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"attention weight for {tok!r} must be finite and >= 0, got {w}")
    top = max((w for _, w in pairs), default=0.0)
    spans = []
    for tok, w in pairs:
        alpha = w / top if top > 0 else 0.0
        spans.append(
            f'<span style="background: rgba(255, 99, 71, {alpha:.4f}); padding: 0.1em 0.15em; '
            f'border-radius: 0.2em" title="{w:.3f}">{html.escape(tok)}</span>'
        )
    return '<div class="attention" style="line-height: 2; direction: ltr">' + " ".join(spans) + "</div>"


def _py(value):
    return value.item() if isinstance(value, np.generic) else value


def most_confident_mistakes(ids, gold, pred, probs, label_names, k: int = 10) -> list[dict]:
    """The ``k`` misclassified rows with the highest probability on the wrong class."""
    gold = np.asarray(gold).astype(np.int64).reshape(-1)
    pred = np.asarray(pred).astype(np.int64).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    ids = list(ids)
    n = len(gold)
    if len(pred) != n or len(ids) != n or probs.ndim != 2 or probs.shape[0] != n:
        raise ValueError(
            f"inconsistent shapes: ids {len(ids)}, gold {gold.shape}, pred {pred.shape}, "
            f"probs {probs.shape}"
        )
    wrong = np.flatnonzero(pred != gold)
    conf = probs[wrong, pred[wrong]]
    order = wrong[np.argsort(-conf, kind="stable")][: max(k, 0)]
    return [
        {
            "id": _py(ids[i]),
            "gold": label_names[gold[i]],
            "predicted": label_names[pred[i]],
            "confidence": float(probs[i, pred[i]]),
        }
        for i in order
    ]


def calibration_table(gold, prob_positive, bins: int = 10) -> list[dict]:
    """Reliability table: equal-width bins on [0, 1], the last one closed.

    One row per non-empty bin: ``bin_low``, ``bin_high``, ``mean_predicted``
    (mean probability), ``fraction_positive`` (mean gold label) and ``count``.
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    bins = int(bins)
    gold = np.asarray(gold, dtype=np.float64).reshape(-1)
    prob = np.asarray(prob_positive, dtype=np.float64).reshape(-1)
    if gold.shape != prob.shape:
        raise ValueError(f"gold has {gold.size} values but prob_positive has {prob.size}")
    if not np.all(np.isfinite(prob)) or np.any((prob < 0) | (prob > 1)):
        raise ValueError("prob_positive must lie in [0, 1]")
    edges = np.arange(bins + 1) / bins
    which = np.clip(np.searchsorted(edges, prob, side="right") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        if count == 0:
            continue
        rows.append(
            {
                "bin_low": float(edges[b]),
                "bin_high": float(edges[b + 1]),
                "mean_predicted": float(prob[mask].mean()),
                "fraction_positive": float(gold[mask].mean()),
                "count": count,
            }
        )
    return rows
