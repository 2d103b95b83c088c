"""Sentiment evaluation: accuracy, macro and per-class scores, ROC and precision-recall
curves (binary), the confusion matrix and a predictions file."""

import csv

import keras
import numpy as np

from pipelines.core.calibration import calibration_report
from pipelines.core.progress import heartbeat
from pipelines.core.reports import bar_chart, line_chart, thin, write_confusion, write_rows_csv
from pipelines.tasks.sentiment.model import predict_probabilities

HEADLINE = ("accuracy", "macro_f1", "roc_auc")


def baseline_scores(encoder, out, test_split, num_classes, num_logits, test_ngrams=None):
    """The linear baseline, fitted on the prepared train split only and scored on the test split:
    (accuracy, macro F1, seconds spent fitting, number of n-gram features). `test_ngrams`: the
    test split's n-gram ids, if already encoded."""
    from sklearn.metrics import accuracy_score, f1_score

    from pipelines.tasks.sentiment.encoding import load_split
    from pipelines.text.ngrams import fit_nb_linear, predicted_classes, presence_matrix, scores

    num_features = len(encoder.ngrams)
    train_split = load_split(out, "train")
    X = presence_matrix(train_split.features(encoder)["ngrams"], num_features)
    weights, intercept, seconds = fit_nb_linear(X, train_split.y, num_classes, 1 if num_logits == 1 else num_classes)
    if test_ngrams is None:
        test_ngrams = test_split.features(encoder)["ngrams"]
    X_test = presence_matrix(test_ngrams, num_features)
    pred = predicted_classes(scores(X_test, weights, intercept))
    return {"accuracy": round(float(accuracy_score(test_split.y, pred)), 5),
            "macro_f1": round(float(f1_score(test_split.y, pred, average="macro", labels=range(num_classes),
                                             zero_division=0)), 5),
            "fit_seconds": round(seconds, 1), "ngram_features": num_features}


def classification_metrics(gold, probs, labels):
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

    pred = probs.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=range(len(labels)), zero_division=0)
    mp, mr, mf, _ = precision_recall_fscore_support(gold, pred, average="macro", zero_division=0)
    metrics = {
        "accuracy": round(float(accuracy_score(gold, pred)), 5),
        "macro_precision": round(float(mp), 5),
        "macro_recall": round(float(mr), 5),
        "macro_f1": round(float(mf), 5),
        "per_class": {
            name: {"precision": round(float(p[i]), 5), "recall": round(float(r[i]), 5),
                   "f1": round(float(f[i]), 5), "support": int(s[i])}
            for i, name in enumerate(labels)
        },
        "documents": int(len(gold)),
    }
    if len(labels) == 2 and len(set(gold.tolist())) == 2:
        metrics["roc_auc"] = round(float(roc_auc_score(gold, probs[:, 1])), 5)
    return metrics, pred


def evaluate(model, encoder, split, cfg, out):
    """(headline metrics, details); writes plots/ and predictions.csv under out."""
    from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

    labels = encoder.labels
    gold, ids = split.y, split.extra["ids"]
    features = split.features(encoder)  # once, for the model and the baseline
    if getattr(model, "wide", None) is not None:
        from pipelines.tasks.sentiment.model import classes_of, logit_parts

        logits, deep, wide = logit_parts(model, encoder, split, cfg["batch_size"], desc="evaluate: test",
                                         features=features)
        probs = keras.ops.convert_to_numpy(model.probabilities(logits))
        parts = {"recurrent": round(float(np.mean(classes_of(deep) == gold)), 5),
                 "ngram": round(float(np.mean(classes_of(wide) == gold)), 5)}
    else:
        probs, parts = predict_probabilities(model, features, cfg["batch_size"]), None
    scores, pred = classification_metrics(gold, probs, labels)
    metrics = {k: scores[k] for k in HEADLINE if k in scores}
    details = {k: v for k, v in scores.items() if k not in metrics}
    if parts is not None:
        details["parts_accuracy"] = parts  # each side of the model alone
    if encoder.ngrams is not None and cfg.get("baseline", True):
        with heartbeat("evaluate: fitting the n-gram baseline on the train split"):
            baseline = baseline_scores(encoder, out, split, len(labels), getattr(model, "num_logits", len(labels)),
                                       test_ngrams=features.get("ngrams"))
        metrics["base_acc"] = baseline["accuracy"]
        metrics["base_f1"] = baseline["macro_f1"]
        details["baseline"] = {**baseline, "model": "NB-weighted logistic regression (Wang & Manning 2012), "
                               f"word 1..{encoder.ngrams.max_n}-grams, fitted on the train split"}

    plots = out / "plots"
    write_confusion(plots, (labels[g] for g in gold), (labels[p] for p in pred), labels,
                    confusion_matrix(gold, pred, labels=range(len(labels))),
                    f"Test confusion (accuracy {metrics['accuracy']:.4f})")
    bar_chart(labels, [details["per_class"][n]["f1"] for n in labels], plots / "per_class_f1.png",
              "Test F1 per class", "F1")
    if "roc_auc" in metrics:
        fpr, tpr, _ = roc_curve(gold, probs[:, 1])
        precision, recall, _ = precision_recall_curve(gold, probs[:, 1])
        fpr, tpr = thin(fpr, tpr)
        recall, precision = thin(recall, precision)
        write_rows_csv(plots / "roc.csv", ["fpr", "tpr"], zip(fpr.round(5), tpr.round(5)))
        write_rows_csv(plots / "precision_recall.csv", ["recall", "precision"],
                       zip(recall.round(5), precision.round(5)))
        line_chart(fpr, {f"ROC (AUC {metrics['roc_auc']:.4f})": tpr}, plots / "roc.png", "Test ROC",
                   "false positive rate")
        line_chart(recall, {"precision-recall": precision}, plots / "precision_recall.png", "Test precision-recall",
                   "recall")
    # Confidence = the top class probability; recall counts the documents answered correctly.
    details["confidence"] = calibration_report(probs.max(axis=1), pred == gold, len(gold), plots, what="documents")
    with open(out / "predictions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "gold", "predicted"] + [f"p_{n}" for n in labels])
        for i, g, p, row in zip(ids, gold, pred, probs):
            w.writerow([i, labels[g], labels[p]] + [f"{x:.5f}" for x in row])
    return metrics, details


def evaluation_lines(metrics, details):
    auc = f", ROC-AUC {metrics['roc_auc']:.4f}" if "roc_auc" in metrics else ""
    lines = [f"test accuracy {metrics['accuracy']:.4f} (macro F1 {metrics['macro_f1']:.4f}{auc})"]
    if "base_acc" in metrics:
        margin = metrics["accuracy"] - metrics["base_acc"]
        lines.append(f"baseline (NB-weighted n-gram logistic regression) accuracy {metrics['base_acc']:.4f} "
                     f"(macro F1 {metrics['base_f1']:.4f}); model - baseline {margin:+.4f}")
    if "parts_accuracy" in details:
        parts = details["parts_accuracy"]
        lines.append(f"  each side alone: recurrent {parts['recurrent']:.4f}, n-gram {parts['ngram']:.4f}")
    for name, r in details["per_class"].items():
        lines.append(f"  {name:10s} P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} ({r['support']})")
    if "confidence" in details:
        lines.append(f"confidence: ECE {details['confidence']['ece']:.4f} (top probability against accuracy; "
                     "plots/reliability.png, plots/min_score.png)")
    return lines
