"""evaluate stage: scores the trained model on the test split.

Usage: python -m pipelines.evaluate ner|sentiment
"""

import csv
import sys
from collections import Counter

from pipelines.config import TASKS, stage_setup
from pipelines.vocab import save_json


def entity_metrics(gold, pred):
    """seqeval scores in conlleval-compatible (default) and strict IOB2 modes."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    def scores(**mode):
        report = classification_report(gold, pred, output_dict=True, zero_division=0, **mode)
        per_type = {
            name: {
                "precision": round(float(r["precision"]), 5),
                "recall": round(float(r["recall"]), 5),
                "f1": round(float(r["f1-score"]), 5),
                "support": int(r["support"]),
            }
            for name, r in report.items()
            if not name.endswith(" avg")
        }
        return {
            "precision": round(float(precision_score(gold, pred, zero_division=0, **mode)), 5),
            "recall": round(float(recall_score(gold, pred, zero_division=0, **mode)), 5),
            "f1": round(float(f1_score(gold, pred, zero_division=0, **mode)), 5),
            "macro_f1": round(float(f1_score(gold, pred, average="macro", zero_division=0, **mode)), 5),
            "per_type": per_type,
        }

    default = scores()
    strict = scores(mode="strict", scheme=IOB2)
    return {**default, "strict": strict}


def token_confusion(gold, pred):
    counts = Counter((g, p) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
    labels = sorted({g for g, _ in counts} | {p for _, p in counts}, key=lambda t: (t != "O", t[2:], t))
    return labels, [[counts[(g, p)] for p in labels] for g in labels]


def write_conll(path, tokens, gold, pred):
    """`word gold predicted` per line: the input format of the conlleval script."""
    with open(path, "w", encoding="utf-8") as f:
        for words, gs, ps in zip(tokens, gold, pred):
            for w, g, p in zip(words, gs, ps):
                f.write(f"{w} {g} {p}\n")
            f.write("\n")


def evaluate_ner(params, out):
    from pipelines.ner import decode_names, load_trained, predict_tag_ids, to_iob2
    from pipelines.plots import bar_chart, confusion_heatmap

    cfg = params["ner"]["evaluate"]
    vocab, encoder, model, tokens, gold_tags = load_trained(out)
    ids = predict_tag_ids(model, encoder.encode(tokens), cfg["batch_size"])
    pred = to_iob2(decode_names(ids, vocab["tags"]), vocab["tag_scheme"])
    gold = to_iob2(gold_tags, vocab["tag_scheme"])

    metrics = entity_metrics(gold, pred)
    n_tokens = sum(len(t) for t in tokens)
    correct = sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
    metrics["token_accuracy"] = round(correct / n_tokens, 5)
    metrics["sentences"] = len(tokens)
    metrics["tokens"] = n_tokens
    save_json(metrics, out / "metrics.json")

    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    types = sorted(metrics["per_type"])
    with open(plots / "per_type_f1.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["type", "f1", "precision", "recall"])
        for t in types:
            r = metrics["per_type"][t]
            w.writerow([t, r["f1"], r["precision"], r["recall"]])
    bar_chart(types, [metrics["per_type"][t]["f1"] for t in types], plots / "per_type_f1.png",
              f"Test F1 per entity type (micro F1 {metrics['f1']:.4f})", "F1")
    with open(plots / "confusion.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["gold", "predicted"])
        for gs, ps in zip(gold, pred):
            w.writerows(zip(gs, ps))
    labels, matrix = token_confusion(gold, pred)
    confusion_heatmap(labels, matrix, plots / "confusion.png", "Token-level confusion (test)")
    write_conll(out / "predictions.conll", tokens, gold, pred)
    return metrics


def main(argv=None):
    setup = stage_setup(__doc__, argv, requires="model.keras", previous_stage="train", tasks=TASKS)
    if setup is None:
        return 1
    task, params, out = setup
    if task == "sentiment":
        from pipelines.sentiment import evaluate_sentiment

        m = evaluate_sentiment(params, out)
        auc = f", ROC-AUC {m['roc_auc']:.4f}" if "roc_auc" in m else ""
        print(f"test accuracy {m['accuracy']:.4f} (macro F1 {m['macro_f1']:.4f}{auc})")
        for name, r in m["per_class"].items():
            print(f"  {name:10s} P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} ({r['support']})")
        return 0
    m = evaluate_ner(params, out)
    print(
        f"test F1 {m['f1']:.4f} (P {m['precision']:.4f}, R {m['recall']:.4f}; "
        f"strict IOB2 F1 {m['strict']['f1']:.4f}; macro F1 {m['macro_f1']:.4f})"
    )
    for t, r in m["per_type"].items():
        print(f"  {t:6s} P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} ({r['support']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
