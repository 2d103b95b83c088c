"""Sentiment prepare: labels, the validation split, tokens, truncation, vocabulary, stats.

Labels are integers or strings, two classes or more:
  * integers with ``label_names``: the ids are the integers, which must lie in
    0..K-1 where K = len(label_names); the names are label_names;
  * integers without ``label_names``: the distinct train values, sorted
    numerically, become ids 0..K-1 and their decimal strings the names;
  * strings: ``label_names`` if given (labels must be among them, ids follow
    its order), otherwise the sorted distinct train labels;
  * a hub ClassLabel column: its names (``label_names`` is then not used).
Every validation/test label must occur in train (reader.py reads the files).

Text: markup such as ``<br />`` is replaced by a space (tokenizer.clean_markup),
then tokenizer.tokenize splits it (encoding.tokenize_document). Empty documents (also after cleaning) are
kept and counted as ``empty_documents``. The dataset stores the original
(not normalised) tokens, truncated to ``max_tokens`` with ``truncate_tokens``;
``num_tokens`` is the length before truncation and ``cut_tokens`` the tokens it
cut (empty for most documents), from which the wide side's n-grams of the whole
document come (``ngram_text: full``). The word vocabulary is built
from the (final, i.e. after carving validation) train split, on all tokens
before truncation, normalised with normalize_word.

When the source has no validation split, a stratified ``validation_size``
fraction of train (by label, seeded with the global seed) becomes validation.
"""

import functools
import math
import random
import sys
from collections import Counter

from pipelines.core.config import resolve_path
from pipelines.core.errors import DataError
from pipelines.core.io import looks_like_hub_id, save_json, save_prepared
from pipelines.core.parallel import map_chunks
from pipelines.core.progress import Progress, heartbeat
from pipelines.tasks.sentiment.encoding import (
    TRUNCATE_POLICIES,
    cut_tokens,
    restore_tokens,
    tokenize_document,
    truncate_tokens,
)
from pipelines.tasks.sentiment.labels import label_ids, label_map
from pipelines.tasks.sentiment.reader import SPLITS, is_int, iter_documents, read_hub, read_local
from pipelines.text.ngrams import build_ngram_vocabulary
from pipelines.text.tokenizer import normalize_word, tokenizer_settings
from pipelines.text.vocab import Vocabulary

PERCENTILES = (50, 90, 95, 99)
NGRAM_TEXTS = ("full", "kept")  # the wide side's n-grams: of the whole document, or of the kept tokens


def stratified_split(labels, fraction, seed):
    """(train indices, validation indices), both sorted, for a validation part of
    round-half-up(len(labels) * fraction) items. Each label gets floor(its share),
    the remainder goes to the largest fractional shares (ties: smaller label), and
    a label's items are picked after a seeded shuffle (labels in sorted order).
    """
    n = len(labels)
    total = math.floor(n * fraction + 0.5)
    if total < 1 or total >= n:
        empty = "validation" if total < 1 else "train"
        raise DataError(
            f"validation_size {fraction} of {n} train documents leaves an empty {empty} split; "
            "adjust sentiment.prepare.validation_size or provide a validation file"
        )
    groups = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    keys = sorted(groups)
    exact = {k: len(groups[k]) * total / n for k in keys}
    quota = {k: math.floor(exact[k]) for k in keys}
    for k in sorted(keys, key=lambda k: (quota[k] - exact[k], k))[: total - sum(quota.values())]:
        quota[k] += 1
    rng = random.Random(seed)
    chosen = []
    for k in keys:
        items = list(groups[k])
        rng.shuffle(items)
        chosen += items[: quota[k]]
    validation = sorted(chosen)
    picked = set(validation)
    return [i for i in range(n) if i not in picked], validation


# ---------------------------------------------------------------------------
# The stage


def check_config(cfg):
    def bad(key, expected):
        raise DataError(f"params: sentiment.prepare.{key} must be {expected}, got {cfg.get(key)!r}")

    for key in ("text_column", "label_column"):
        if not isinstance(cfg.get(key), str) or not cfg[key]:
            bad(key, "a column name")
    if cfg.get("id_column") is not None and (not isinstance(cfg["id_column"], str) or not cfg["id_column"]):
        bad("id_column", "a column name or null")
    if cfg.get("truncate") not in TRUNCATE_POLICIES:
        bad("truncate", " or ".join(TRUNCATE_POLICIES))
    if not is_int(cfg.get("max_tokens")) or cfg["max_tokens"] < 1:
        bad("max_tokens", "a positive integer")
    size = cfg.get("validation_size")
    if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size < 1:
        bad("validation_size", "a fraction between 0 and 1 (exclusive)")
    if not is_int(cfg.get("min_word_count")) or cfg["min_word_count"] < 1:
        bad("min_word_count", "an integer >= 1")
    if cfg.get("max_vocab") is not None and (not is_int(cfg["max_vocab"]) or cfg["max_vocab"] < 3):
        bad("max_vocab", "null or an integer >= 3 (it counts <pad> and <unk>)")
    names = cfg.get("label_names")
    if names is not None and (
        not isinstance(names, list)
        or len(names) < 2
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) != len(names)
    ):
        bad("label_names", "null or a list of at least two distinct non-empty strings")
    for key in ("lowercase", "digits_to_zero"):
        if not isinstance(cfg.get(key), bool):
            bad(key, "true or false")
    if not is_int(cfg.get("ngram_max_n", 0)) or not 0 <= cfg.get("ngram_max_n", 0) <= 5:
        bad("ngram_max_n", "an integer from 0 (no n-gram features) to 5")
    if not is_int(cfg.get("ngram_min_df", 1)) or cfg.get("ngram_min_df", 1) < 1:
        bad("ngram_min_df", "an integer >= 1")
    if cfg.get("max_ngrams") is not None and (not is_int(cfg["max_ngrams"]) or cfg["max_ngrams"] < 1):
        bad("max_ngrams", "null or a positive integer")
    if cfg.get("ngram_text", "full") not in NGRAM_TEXTS:
        bad("ngram_text", " or ".join(NGRAM_TEXTS))


def percentile(sorted_values, p):
    """Nearest-rank percentile: the smallest value with at least p% of values <= it."""
    k = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[max(k, 1) - 1]


def tokenize_texts(texts, lowercase, digits_to_zero):
    """(token lists, Counter of the normalised tokens) of a chunk of document texts."""
    token_lists = [tokenize_document(text) for text in texts]
    counts = Counter()
    for tokens in token_lists:
        counts.update(normalize_word(t, lowercase, digits_to_zero) for t in tokens)
    return token_lists, counts


def process_split(docs, lids, cfg, progress=None):
    """Tokenises and truncates; returns (columns for the Dataset, normalised token Counter, stats).

    `progress` (a pipelines.core.progress.Progress), if given, counts the documents. The
    tokenising runs on every usable CPU (pipelines.core.parallel), in document order.
    """
    max_tokens, policy = cfg["max_tokens"], cfg["truncate"]
    # The raw text is kept so that export can check the SavedModel on it.
    columns = {"id": [doc.id for doc in docs], "text": [doc.text for doc in docs], "tokens": [],
               "cut_tokens": [], "label": list(lids), "num_tokens": []}
    counts = Counter()
    truncated = empty = 0
    chunk_fn = functools.partial(tokenize_texts, lowercase=cfg["lowercase"], digits_to_zero=cfg["digits_to_zero"])
    for token_lists, chunk_counts in map_chunks(chunk_fn, columns["text"], progress=progress):
        counts.update(chunk_counts)
        for tokens in token_lists:
            kept = truncate_tokens(tokens, max_tokens, policy)
            truncated += len(kept) < len(tokens)
            empty += not tokens
            columns["tokens"].append(kept)
            columns["cut_tokens"].append(cut_tokens(tokens, max_tokens, policy))
            columns["num_tokens"].append(len(tokens))
    lengths = sorted(columns["num_tokens"])
    stats = {
        "documents": len(docs),
        "tokens": sum(lengths),
        "tokens_kept": sum(len(t) for t in columns["tokens"]),
        "truncated_documents": truncated,
        "empty_documents": empty,
        "length": {**{f"p{p}": percentile(lengths, p) for p in PERCENTILES}, "max": lengths[-1]},
    }
    return columns, counts, stats


def prepare(cfg, out, seed):
    """Writes out/data (DatasetDict), out/vocab.json and out/stats.json; returns the stats."""
    import datasets

    check_config(cfg)
    source = cfg["source"]
    if resolve_path(source).exists() or not looks_like_hub_id(source):
        splits, sources = read_local(source, cfg)
        class_names, origin = None, "file"
    else:
        splits, sources, class_names = read_hub(source, cfg)
        origin = "hub"
    label_names = class_names if class_names is not None else cfg.get("label_names")
    names, ids, kind = label_map(splits["train"], label_names)
    lids = label_ids(splits, names, ids, kind, label_names is not None)

    if "validation" in splits:
        validation = origin
    else:
        validation = "carved"
        train_idx, val_idx = stratified_split(lids["train"], cfg["validation_size"], seed)
        train_docs, train_lids = splits["train"], lids["train"]
        splits["validation"] = [train_docs[i] for i in val_idx]
        lids["validation"] = [train_lids[i] for i in val_idx]
        splits["train"] = [train_docs[i] for i in train_idx]
        lids["train"] = [train_lids[i] for i in train_idx]

    # One progress line every ~10 s over all splits (with an ETA), whatever their sizes.
    total = sum(len(splits[split]) for split in SPLITS)
    with Progress("prepare: tokenising", total=total, unit="documents") as progress:
        processed = {}
        for split in SPLITS:
            progress.extra = split
            processed[split] = process_split(splits[split], lids[split], cfg, progress)
    words = Vocabulary.build(processed["train"][1], min_count=cfg["min_word_count"], max_size=cfg.get("max_vocab"))
    max_n = cfg.get("ngram_max_n", 0)
    grams = []
    if max_n:
        # The wide side's features: n-grams of the whole documents (or of the kept tokens), train split only.
        with heartbeat("prepare: counting n-grams"):
            lowercase, digits = cfg["lowercase"], cfg["digits_to_zero"]
            train = processed["train"][0]
            documents = train["tokens"]
            if cfg.get("ngram_text", "full") == "full":
                documents = (restore_tokens(kept, cut, cfg["max_tokens"], cfg["truncate"])
                             for kept, cut in zip(train["tokens"], train["cut_tokens"]))
            grams = build_ngram_vocabulary(
                ([normalize_word(t, lowercase, digits) for t in tokens] for tokens in documents),
                max_n, min_df=cfg.get("ngram_min_df", 1), max_size=cfg.get("max_ngrams"))

    split_stats = {}
    for split, (_, counts, s) in processed.items():
        oov = sum(c for w, c in counts.items() if w not in words)
        label_counts = Counter(lids[split])
        split_stats[split] = {
            **s,
            "labels": {name: label_counts.get(i, 0) for i, name in enumerate(names)},
            "oov_tokens": oov,
            "oov_rate": round(oov / max(1, s["tokens"]), 5),
        }

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "cut_tokens": datasets.Sequence(datasets.Value("string")),
            "label": datasets.ClassLabel(names=names),
            "num_tokens": datasets.Value("int32"),
        }
    )
    dataset = datasets.DatasetDict(
        {split: datasets.Dataset.from_dict(processed[split][0], features=features) for split in SPLITS}
    )
    save_prepared(
        out,
        dataset,
        {
            **tokenizer_settings(cfg),
            "max_tokens": cfg["max_tokens"],
            "truncate": cfg["truncate"],
            "clean_markup": True,
            "labels": names,
            "words": words.to_list(),
            "ngram_max_n": max_n,
            "ngram_text": cfg.get("ngram_text", "full"),
            "ngrams": grams,
        },
    )
    stats = {
        "labels": names,
        "label_type": kind,
        "validation": validation,
        "validation_size": cfg["validation_size"] if validation == "carved" else None,
        "max_tokens": cfg["max_tokens"],
        "truncate": cfg["truncate"],
        "sources": sources,
        "splits": split_stats,
        "vocab": {"words": len(words), "ngrams": len(grams)},
    }
    save_json(stats, out / "stats.json")
    return stats


def summary_lines(stats):
    """A few lines for the terminal."""
    lines = []
    for split, s in stats["splits"].items():
        balance = ", ".join(f"{name} {n}" for name, n in s["labels"].items())
        lines.append(
            f"{split}: {s['documents']} documents ({balance}), {s['tokens']} tokens, median length "
            f"{s['length']['p50']}, {s['truncated_documents']} truncated, {s['empty_documents']} empty, "
            f"OOV rate {s['oov_rate']:.2%}"
        )
    how = {"carved": "carved from train", "file": "from its file", "hub": "from the hub"}[stats["validation"]]
    lines.append(
        f"labels: {', '.join(stats['labels'])}; vocabulary: {stats['vocab']['words']} words, "
        f"{stats['vocab'].get('ngrams', 0)} n-grams; "
        f"validation {how}; truncation: {stats['truncate']} to {stats['max_tokens']} tokens"
    )
    return lines


# --- the pretrain stage's corpus (pipelines/core/pretraining.py) ---

def tokenize_documents(texts):
    """Token lists of a chunk of raw texts (markup removed, not truncated)."""
    return [tokenize_document(text) for text in texts]


def corpus_files(pretrain_cfg, prepare_cfg):
    """The unlabelled files: relative names are under prepare.source when it is a local folder."""
    source = prepare_cfg["source"]
    base = resolve_path(source) if resolve_path(source).is_dir() else None  # a hub id: names are paths
    files = pretrain_cfg.get("files") or []
    return [resolve_path(name, base) if base is not None else resolve_path(name)
            for name in ([files] if isinstance(files, str) else files)]


def pretraining_corpus(pretrain_cfg, prepare_cfg, encoder, train_split, val_split):
    """(train documents, validation documents, stats): lists of word-id arrays.

    Train: the unlabelled files' texts (`pretrain.files`, column `pretrain.text_column`;
    any labels in them are ignored) and, with `pretrain.include_train`, the train
    split's tokens. Validation: the validation split's tokens (only to report the
    language model's loss). The test split is never read.
    """
    texts, files = [], []
    column = pretrain_cfg.get("text_column") or prepare_cfg.get("text_column") or "text"
    for path in corpus_files(pretrain_cfg, prepare_cfg):
        before = len(texts)
        texts.extend(doc.text for doc in iter_documents(path, text_column=column, label_column=None))
        files.append({"file": str(path), "documents": len(texts) - before})
    docs = []
    with Progress("pretrain: tokenising the unlabelled text", total=len(texts), unit="documents",
                  stream=sys.stdout) as progress:
        for token_lists in map_chunks(tokenize_documents, texts, progress=progress):
            docs.extend(encoder.word_ids(tokens) for tokens in token_lists if tokens)
    include_train = pretrain_cfg.get("include_train", True)
    if include_train:
        docs.extend(encoder.word_ids(tokens) for tokens in train_split.tokens if tokens)
    if not docs:
        raise DataError("no text to pretrain on: pretrain.files is empty and pretrain.include_train is false")
    val_docs = [encoder.word_ids(tokens) for tokens in val_split.tokens if tokens]
    return docs, val_docs, {"files": files, "train_documents": len(train_split.tokens) if include_train else 0}

