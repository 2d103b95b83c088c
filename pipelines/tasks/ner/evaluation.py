"""NER evaluation: entity-level scores (seqeval, conlleval and strict IOB2), per-type
scores, the token confusion matrix and a conlleval-compatible predictions file."""

from collections import Counter

from pipelines.core.reports import bar_chart, write_confusion, write_rows_csv
from pipelines.tasks.ner.encoding import decode_names, to_iob2
from pipelines.tasks.ner.model import predict_tag_ids

HEADLINE = ("f1", "precision", "recall", "macro_f1")


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


def evaluate(model, encoder, split, cfg, out):
    """(headline metrics, details); writes plots/ and predictions.conll under out."""
    vocab = encoder.vocab
    tokens = split.tokens
    ids = predict_tag_ids(model, encoder.encode(tokens), cfg["batch_size"])
    pred = to_iob2(decode_names(ids, vocab["tags"]), vocab["tag_scheme"])
    gold = to_iob2(split.extra["tags"], vocab["tag_scheme"])

    scores = entity_metrics(gold, pred)
    n_tokens = sum(len(t) for t in tokens)
    correct = sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
    metrics = {**{k: scores[k] for k in HEADLINE}, "strict_f1": scores["strict"]["f1"]}
    details = {"per_type": scores["per_type"], "strict": scores["strict"], "sentences": len(tokens),
               "tokens": n_tokens, "token_accuracy": round(correct / n_tokens, 5)}

    plots = out / "plots"
    types = sorted(details["per_type"])
    per_type = details["per_type"]
    write_rows_csv(plots / "per_type_f1.csv", ["type", "f1", "precision", "recall"],
                   ([t, per_type[t]["f1"], per_type[t]["precision"], per_type[t]["recall"]] for t in types))
    bar_chart(types, [per_type[t]["f1"] for t in types], plots / "per_type_f1.png",
              f"Test F1 per entity type (micro F1 {metrics['f1']:.4f})", "F1")
    labels, matrix = token_confusion(gold, pred)
    write_confusion(plots, (g for gs in gold for g in gs), (p for ps in pred for p in ps), labels, matrix,
                    "Token-level confusion (test)")
    write_conll(out / "predictions.conll", tokens, gold, pred)
    return metrics, details


def evaluation_lines(metrics, details):
    lines = [f"test F1 {metrics['f1']:.4f} (P {metrics['precision']:.4f}, R {metrics['recall']:.4f}; "
             f"strict IOB2 F1 {metrics['strict_f1']:.4f}; macro F1 {metrics['macro_f1']:.4f})"]
    for t, r in details["per_type"].items():
        lines.append(f"  {t:6s} P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} ({r['support']})")
    return lines
