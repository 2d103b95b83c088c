"""NER prepare: tag scheme normalised, label set and vocabularies from train, stats.

The result is an HF DatasetDict (tokens, ClassLabel tags, doc, line) in
out/data, the vocabularies and tag names in out/vocab.json and counts in
out/stats.json.
"""

from collections import Counter

from pipelines.core.config import resolve_path
from pipelines.core.errors import DataError, ParamsError
from pipelines.core.io import looks_like_hub_id, save_json, save_prepared
from pipelines.tasks.ner.reader import read_hub, read_local_conll
from pipelines.tasks.ner.labels import EVIDENCE_KEYS, decide_scheme, get_spans, normalise_tags, scheme_evidence
from pipelines.text.embeddings import VectorsFileError, vector_words
from pipelines.text.tokenizer import normalize_word, tokenizer_settings
from pipelines.text.vocab import OOV, PAD, Vocabulary


def where(row, index=None):
    """`file:line` of a sentence (or of one of its tokens) for error messages."""
    line = row["line"] + (index or 0)
    return f"{row['source']}:{line}"


def normalise_scheme(splits, target):
    """Detects the source scheme on all splits together and converts every split to `target`.

    Returns (source scheme, {split: labels.scheme_evidence counts}, {split:
    tags repaired}): the tags the source scheme does not allow where they are,
    read as conlleval reads them (in IOB2 a stray I- start becomes B-).
    """
    counts = {split: scheme_evidence(row["tags"] for row in rows) for split, rows in splits.items()}
    source = decide_scheme({key: sum(c[key] for c in counts.values()) for key in EVIDENCE_KEYS})
    repaired = dict.fromkeys(splits, 0)
    for split, rows in splits.items():
        for row in rows:
            row["tags"], n = normalise_tags(row["tags"], source, target)
            repaired[split] += n
    return source, counts, repaired


def entity_type(tag):
    return None if tag == "O" else tag[2:]


def check_labels(splits):
    """Entity types of dev/test must occur in train; checked on the source tags."""
    known = {entity_type(t) for row in splits["train"] for t in row["tags"]} - {None}
    for split in ("validation", "test"):
        for row in splits[split]:
            for i, tag in enumerate(row["tags"]):
                if tag != "O" and entity_type(tag) not in known:
                    raise DataError(
                        f"{where(row, i)}: tag {tag!r} in the {split} split has an entity type that never "
                        f"occurs in train (train types: {', '.join(sorted(known))})"
                    )
    return sorted(known)


def tag_names_for(types, scheme):
    """"O" first, then every tag of the scheme for each train entity type, so a
    single-token entity in test is representable even if train had none."""
    prefixes = "BIES" if scheme == "IOBES" else "BI"
    return ["O"] + [f"{p}-{t}" for t in types for p in prefixes]


def entity_counts(rows, scheme):
    counts = Counter()
    for row in rows:
        counts.update(t for t, _, _ in get_spans(row["tags"], scheme))
    return dict(sorted(counts.items()))


def build_stats(splits, read_stats, words, cfg, scheme, source):
    """`source`: what normalise_scheme returned."""
    source_scheme, counts, repaired = source
    stats = {
        "source_scheme": source_scheme,
        "source_scheme_counts": {key: sum(c[key] for c in counts.values()) for key in EVIDENCE_KEYS},
        "tags_repaired": sum(repaired.values()),
        "tag_scheme": scheme,
        "splits": {},
    }
    for split, rows in splits.items():
        tokens = [t for row in rows for t in row["tokens"]]
        norm = [normalize_word(t, cfg["lowercase"], cfg["digits_to_zero"]) for t in tokens]
        oov = sum(1 for t in norm if t not in words)
        stats["splits"][split] = {
            "sentences": len(rows),
            "tokens": len(tokens),
            "entities": entity_counts(rows, scheme),
            "oov_tokens": oov,
            "oov_rate": round(oov / max(1, len(tokens)), 5),
            "source_scheme_counts": counts[split],
            "tags_repaired": repaired[split],
            **read_stats[split],
        }
    return stats


def with_embedding_words(words, cfg):
    """`words` followed by the words of `embedding_words` (a vectors file) it lacks: a word
    unseen in train then keeps its pretrained vector instead of becoming <unk>."""
    if not cfg.get("embedding_words"):
        return words
    path = resolve_path(cfg["embedding_words"])
    if not path.is_file():
        raise DataError(f"ner.prepare.embedding_words: {path} not found (run the word2vec stage first: "
                        "`dvc repro word2vec`; or set it to null)")
    try:
        file_words = vector_words(path, lambda w: normalize_word(w, cfg["lowercase"], cfg["digits_to_zero"]))
    except VectorsFileError as err:
        raise DataError(str(err)) from None
    extra = [w for w in file_words if w not in words and w not in (PAD, OOV)]
    return Vocabulary([*words.to_list()[2:], *extra])


DOCUMENT_FEATURES = ("topic", "case")


def document_settings(cfg):
    """(document_features, max_document_tokens) from params, checked."""
    features = cfg.get("document_features") or []
    if not isinstance(features, list) or any(f not in DOCUMENT_FEATURES for f in features) \
            or len(set(features)) != len(features):
        raise ParamsError(f"params: ner.prepare.document_features must be a list of distinct values of "
                          f"{list(DOCUMENT_FEATURES)}, got {features!r}")
    limit = cfg.get("max_document_tokens", 1000)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ParamsError(f"params: ner.prepare.max_document_tokens must be an integer >= 1, got {limit!r}")
    return features, limit


def number_documents(splits, read_stats):
    """A split read without document markers (-DOCSTART-, or from the hub) gets one
    document per sentence, so document features never join unrelated sentences."""
    for split, rows in splits.items():
        if not read_stats[split].get("docstart_lines_skipped"):
            for i, row in enumerate(rows):
                row["doc"] = i


def prepare(cfg, out, seed=None):
    """Writes out/data (DatasetDict), out/vocab.json and out/stats.json; returns the stats.

    Nothing is random (validation is a file of its own), so `seed` is unused.
    """
    import datasets

    source = cfg["source"]
    if resolve_path(source).exists() or not looks_like_hub_id(source):
        splits, read_stats = read_local_conll(source, cfg["files"], cfg)
    else:
        splits, read_stats = read_hub(source, cfg)
    for split, rows in splits.items():
        if not rows:
            raise DataError(f"the {split} split of {source} contains no sentences")

    document_features, max_document_tokens = document_settings(cfg)
    number_documents(splits, read_stats)
    scheme = cfg["tag_scheme"]
    if scheme not in ("IOB2", "IOBES"):
        raise ParamsError(f"params: ner.prepare.tag_scheme must be IOB2 or IOBES, got {scheme!r}")
    types = check_labels(splits)
    source = normalise_scheme(splits, scheme)
    tag_names = tag_names_for(types, scheme)
    train = splits["train"]

    words = Vocabulary.from_iterable(
        (normalize_word(t, cfg["lowercase"], cfg["digits_to_zero"]) for row in train for t in row["tokens"]),
        min_count=cfg["min_word_count"],
    )
    train_words = len(words)
    # Frequent first, so the words seen once are the ids [start, train_words) (ner.model.singleton_dropout).
    counts = Counter(normalize_word(t, cfg["lowercase"], cfg["digits_to_zero"]) for row in train for t in row["tokens"])
    singletons = [words.stoi[w] for w, c in counts.items() if c == 1 and w in words]
    singleton_words = [min(singletons), train_words] if singletons else [train_words, train_words]
    words = with_embedding_words(words, cfg)
    chars = Vocabulary.from_iterable(
        (c for row in train for t in row["tokens"] for c in t), min_count=cfg["min_char_count"]
    )

    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "tags": datasets.Sequence(datasets.ClassLabel(names=tag_names)),
            "doc": datasets.Value("int32"),
            "line": datasets.Value("int32"),
        }
    )
    dataset = datasets.DatasetDict(
        {
            split: datasets.Dataset.from_dict(
                {
                    "tokens": [r["tokens"] for r in rows],
                    "tags": [r["tags"] for r in rows],
                    "doc": [r["doc"] for r in rows],
                    "line": [r["line"] for r in rows],
                },
                features=features,
            )
            for split, rows in splits.items()
        }
    )
    save_prepared(
        out,
        dataset,
        {
            **tokenizer_settings(cfg),
            "max_word_chars": cfg["max_word_chars"],
            "tag_scheme": scheme,
            "tags": tag_names,
            "words": words.to_list(),
            "singleton_words": singleton_words,
            "chars": chars.to_list(),
            "document_features": document_features,
            "max_document_tokens": max_document_tokens,
        },
    )
    stats = build_stats(splits, read_stats, words, cfg, scheme, source)
    stats["vocab"] = {"words": len(words), "train_words": train_words,
                      "train_singletons": singleton_words[1] - singleton_words[0], "chars": len(chars),
                      "tags": len(tag_names)}
    stats["document_features"] = list(document_features)
    save_json(stats, out / "stats.json")
    return stats


def scheme_line(stats):
    """How the source scheme was decided, in one line."""
    c = stats["source_scheme_counts"]
    line = (
        f"tag scheme: {stats['source_scheme']} -> {stats['tag_scheme']} "
        f"(entity starts: {c['B_starts']:,} B-, {c['I_starts']:,} I-; {c['E_tags'] + c['S_tags']:,} E-/S- tags"
    )
    if stats["tags_repaired"]:
        per_split = ", ".join(f"{split} {s['tags_repaired']:,}" for split, s in stats["splits"].items())
        line += f"; tags not valid {stats['source_scheme']} repaired: {per_split}"
    return line + ")"


def summary_lines(stats):
    lines = [
        f"{split}: {s['sentences']} sentences, {s['tokens']} tokens, "
        f"{sum(s['entities'].values())} entities, OOV rate {s['oov_rate']:.2%}"
        for split, s in stats["splits"].items()
    ]
    lines.append(scheme_line(stats))
    lines.append(f"vocabulary: {stats['vocab']}")
    warning = document_marker_warning(stats)
    if warning:
        lines.append(warning)
    return lines


def document_marker_warning(stats):
    """A warning line when document features are on and the train split has no -DOCSTART-
    while another split has: the tagger learns the features from single sentences and meets
    them over whole documents (3,000 random CoNLL-2003 train sentences: -0.51 test F1)."""
    features = stats.get("document_features")
    marked = [split for split, s in stats["splits"].items() if s.get("docstart_lines_skipped")]
    if not features or "train" in marked or not marked:
        return None
    verb = "marks" if len(marked) == 1 else "mark"
    return (f"warning: {' and '.join(marked)} {verb} documents (-DOCSTART-) but train does not, so "
            f"ner.prepare.document_features {features} are learnt from single sentences and applied to "
            "whole documents; with such data [] is usually better (README: NER ablations)")
