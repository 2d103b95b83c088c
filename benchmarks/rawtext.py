"""NER on raw text: the test split detokenized as users would send it, through the SavedModel.

Usage: python -m benchmarks rawtext [--params P] [--out-dir DIR] [--min-score P] [--documents]

Each test sentence of the prepared NER data (<out-dir>/data) is detokenized with
sacremoses' Moses detokenizer (requirements-test.txt). It reports (a) the share
of sentences the project's tokenizer splits back into exactly the dataset's
tokens, and (b) entity precision, recall and F1 of the exported SavedModel
(<out-dir>/saved_model) on the raw sentences, with gold and predicted entities
compared as exact character spans, next to the token-level test F1 of the same
model (<out-dir>/metrics.json, written by the evaluate stage). Writes
<out-dir>/rawtext.json. With --documents, each test document (its sentences
detokenized and joined by a newline) is one text, as a user would send an
article; that is how a tagger with document features (ner.prepare.
document_features) sees its context when served (rawtext_documents.json).
"""

import json
import time
from collections import Counter
from pathlib import Path

from pipelines.core.config import load_params, output_dir, resolve_path
from pipelines.core.errors import StageError
from pipelines.core.io import save_json
from pipelines.core.progress import Progress


def token_offsets(text, tokens):
    """(start, end) of each token in `text`, found left to right; None if one is missing
    (a detokenizer that changed a token)."""
    offsets, pos = [], 0
    for token in tokens:
        start = text.find(token, pos)
        if start < 0:
            return None
        pos = start + len(token)
        offsets.append((start, pos))
    return offsets


def char_spans(iob2_tags, offsets):
    from pipelines.tasks.ner.labels import get_spans

    return {(label, offsets[first][0], offsets[last - 1][1]) for label, first, last in get_spans(iob2_tags, "IOB2")}


def prf(tp, predicted, gold):
    p = tp / predicted if predicted else 0.0
    r = tp / gold if gold else 0.0
    return round(p, 5), round(r, 5), round(2 * p * r / (p + r), 5) if p + r else 0.0


def as_documents(texts, gold, docs):
    """Sentences of one document joined by newlines into one text, gold spans shifted."""
    joined, spans, index = [], [], {}
    for text, sentence_spans, doc in zip(texts, gold, docs):
        if doc not in index:
            index[doc] = len(joined)
            joined.append("")
            spans.append(set())
        i = index[doc]
        shift = len(joined[i]) + (1 if joined[i] else 0)
        joined[i] = f"{joined[i]}\n{text}" if joined[i] else text
        spans[i] |= {(label, start + shift, end + shift) for label, start, end in sentence_spans}
    return joined, spans


def measure(out, min_score=0.0, log=print, documents=False):
    try:
        from sacremoses import MosesDetokenizer
    except ImportError:
        raise StageError("the raw-text benchmark needs sacremoses (pip install -r requirements-test.txt)") from None
    from pipelines.tasks import load_task
    from pipelines.tasks.ner.encoding import to_iob2
    from pipelines.text.tokenizer import tokenize

    task = load_task("ner")
    for needed in ("data", "vocab.json", "saved_model"):
        if not (out / needed).exists():
            raise StageError(f"{out / needed} not found; run the NER stages up to export first")
    vocab = task.encoder(out).vocab
    split = task.load_split(out, "test")
    gold_tags = to_iob2(split.extra["tags"], vocab["tag_scheme"])
    detokenize = MosesDetokenizer(lang="en").detokenize

    texts, gold, docs, exact, lost = [], [], [], 0, 0
    differences = Counter()
    for tokens, tags, doc in zip(split.tokens, gold_tags, split.context["docs"]):
        text = detokenize(list(tokens))
        offsets = token_offsets(text, tokens)
        if offsets is None:
            lost += 1  # the detokenizer rewrote a token: no gold character spans
            continue
        back = tokenize(text)
        if back == list(tokens):
            exact += 1
        else:
            differences[next(f"{a!r} -> {b!r}" for a, b in zip(list(tokens) + [""], back + [""]) if a != b)] += 1
        texts.append(text)
        gold.append(char_spans(tags, offsets))
        docs.append(doc)
    if documents:
        texts, gold = as_documents(texts, gold, docs)

    predictor = task.predictor(out / "saved_model")
    predictor.min_score = min_score
    start = time.perf_counter()
    predicted = []
    chunk = 16 if documents else 512
    with Progress("rawtext: SavedModel", total=len(texts), unit="documents" if documents else "sentences") \
            as progress:
        for first in range(0, len(texts), chunk):
            for row in predictor.predict(texts[first : first + chunk]):
                predicted.append({(e["type"], e["start"], e["end"]) for e in row["entities"]})
            progress.update(len(texts[first : first + chunk]))
    seconds = time.perf_counter() - start
    tp = sum(len(g & p) for g, p in zip(gold, predicted))
    n_pred, n_gold = sum(map(len, predicted)), sum(map(len, gold))
    precision, recall, f1 = prf(tp, n_pred, n_gold)

    metrics_path = out / "metrics.json"
    token_f1 = json.loads(metrics_path.read_text())["f1"] if metrics_path.exists() else None
    result = {
        "sentences": len(split.tokens), "detokenizer_changed_tokens": lost,
        "texts": len(texts), "unit": "documents" if documents else "sentences",
        "tokens_back_exactly": round(exact / max(1, len(docs)), 5),
        "raw_text": {"precision": precision, "recall": recall, "f1": f1, "gold_entities": n_gold,
                     "predicted_entities": n_pred, "min_score": min_score},
        "token_level_f1": token_f1,
        "raw_minus_token_f1": round(f1 - token_f1, 5) if token_f1 is not None else None,
        "savedmodel_seconds": round(seconds, 1),
        "top_tokenization_differences": dict(differences.most_common(15)),
    }
    save_json(result, out / ("rawtext_documents.json" if documents else "rawtext.json"))
    return result


def add_arguments(parser):
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repository's)")
    parser.add_argument("--out-dir", default=None, help="NER output folder (default: ner.out_dir of the params)")
    parser.add_argument("--min-score", type=float, default=0.0, help="drop entities scored below this (default 0)")
    parser.add_argument("--documents", action="store_true",
                        help="send each test document as one text (its sentences joined by newlines)")


def check_arguments(parser, args):
    if not 0.0 <= args.min_score < 1.0:
        parser.error("--min-score must be in [0, 1)")


def run(args):
    out = Path(resolve_path(args.out_dir)) if args.out_dir else output_dir(load_params(args.params), "ner")
    result = measure(out, args.min_score, documents=args.documents)
    raw = result["raw_text"]
    print(f"sentences {result['sentences']} (the detokenizer changed a token in {result['detokenizer_changed_tokens']}), "
          f"sent as {result['texts']} {result['unit']}")
    print(f"(a) tokens back exactly           {result['tokens_back_exactly']:.4f}")
    print(f"(b) raw-text entity F1            {raw['f1']:.4f} (P {raw['precision']:.4f}, R {raw['recall']:.4f})")
    if result["token_level_f1"] is not None:
        print(f"    token-level test F1           {result['token_level_f1']:.4f} "
              f"(raw - token {result['raw_minus_token_f1']:+.4f})")
    print(f"    SavedModel seconds            {result['savedmodel_seconds']}")
    for diff, count in result["top_tokenization_differences"].items():
        print(f"    {count:5d}  {diff}")
    print(f"wrote {out / ('rawtext_documents.json' if args.documents else 'rawtext.json')}")
    return 0
