"""NER evaluation: entity-level scores (seqeval, conlleval and strict IOB2), per-type
scores, the token confusion matrix and a conlleval-compatible predictions file."""

from collections import Counter

from pipelines.core.calibration import calibration_report
from pipelines.core.errors import ParamsError
from pipelines.core.reports import bar_chart, write_confusion, write_rows_csv
from pipelines.tasks.ner.encoding import decode_names, to_iob2
from pipelines.tasks.ner.labels import get_spans
from pipelines.tasks.ner.model import entity_types, predict_tags_and_scores, vote_documents

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


def min_score_of(cfg):
    value = cfg.get("min_score", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ParamsError(f"params: ner.evaluate.min_score must be a number in [0, 1), got {value!r}")
    return float(value)


def drop_below(tags, scores, min_score):
    """IOB2 tags with the entities scored below min_score turned to O."""
    out = list(tags)
    for _, first, last in get_spans(tags, "IOB2"):
        if scores[first] < min_score:
            out[first:last] = ["O"] * (last - first)
    return out


def extremes(tokens, pred_spans, entity_scores, correct, count=10):
    """The `count` most and least confident predicted entities, with whether each is right."""
    rows = [{"sentence": i, "type": label, "text": " ".join(tokens[i][first:last]),
             "score": round(float(entity_scores[i][first]), 5)}
            for i, spans in enumerate(pred_spans) for label, first, last in spans]
    for row, ok in zip(rows, correct):
        row["correct"] = bool(ok)
    ranked = sorted(rows, key=lambda r: r["score"])
    return {"least_confident": ranked[:count], "most_confident": ranked[::-1][:count]}


def evaluate(model, encoder, split, cfg, out):
    """(headline metrics, details); writes plots/ and predictions.conll under out."""
    min_score = min_score_of(cfg)
    vocab = encoder.vocab
    tokens = split.tokens
    ids, entity_scores = predict_tags_and_scores(model, split.features(encoder), vocab["tags"], cfg["batch_size"])
    pred = to_iob2(decode_names(ids, vocab["tags"]), vocab["tag_scheme"])
    gold = to_iob2(split.extra["tags"], vocab["tag_scheme"])
    document_vote = float(getattr(model, "document_vote", 0.0))
    if document_vote:  # as the SavedModel does it, each document being a served text
        pred, entity_scores = vote_documents(split.context["docs"], [list(t) for t in tokens], pred, entity_scores,
                                             entity_types(vocab["tags"]), document_vote)

    # Calibration is measured on every predicted entity, before min_score drops any.
    gold_spans = [get_spans(g, "IOB2") for g in gold]
    pred_spans = [get_spans(p, "IOB2") for p in pred]
    correct = [span in set(g) for g, p in zip(gold_spans, pred_spans) for span in p]
    confidences = [float(s[first]) for spans, s in zip(pred_spans, entity_scores) for _, first, _ in spans]
    calibration = calibration_report(confidences, correct, sum(map(len, gold_spans)), out / "plots")
    calibration.update(extremes(tokens, pred_spans, entity_scores, correct))
    if min_score > 0:
        pred = [drop_below(p, s, min_score) for p, s in zip(pred, entity_scores)]

    scores = entity_metrics(gold, pred)
    n_tokens = sum(len(t) for t in tokens)
    correct_tokens = sum(g == p for gs, ps in zip(gold, pred) for g, p in zip(gs, ps))
    metrics = {**{k: scores[k] for k in HEADLINE}, "strict_f1": scores["strict"]["f1"]}
    details = {"per_type": scores["per_type"], "strict": scores["strict"], "sentences": len(tokens),
               "tokens": n_tokens, "token_accuracy": round(correct_tokens / n_tokens, 5),
               "min_score": min_score, "document_vote": document_vote, "confidence": calibration}

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
    confidence = details.get("confidence")
    if confidence and confidence["count"]:
        lines.append(f"entity confidence: ECE {confidence['ece']:.4f} over {confidence['count']} predicted "
                     f"entities (mean score {confidence['mean_score']:.4f}, fraction correct "
                     f"{confidence['fraction_correct']:.4f}); plots/reliability.png, plots/min_score.png")
    if details.get("min_score"):
        lines.append(f"entities scored below min_score {details['min_score']} were dropped before scoring")
    return lines
