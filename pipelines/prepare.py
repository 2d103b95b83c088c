"""prepare stage: source data -> DatasetDict with ClassLabel labels, vocabularies, stats.

Usage: python -m pipelines.prepare ner|sentiment
(The sentiment branch lives in pipelines/documents.py.)
"""

import sys
from collections import Counter
from pathlib import Path

from pipelines import conll
from pipelines.config import resolve_path, stage_setup
from pipelines.tokenizer import TOKENIZER_VERSION, normalize_word
from pipelines.vocab import Vocabulary, save_json

SPLITS = ("train", "validation", "test")


class DataError(ValueError):
    """Bad input data; the message names the file or record and the problem."""


def looks_like_hub_id(source):
    """`owner/name` or `name` that is not an existing local path."""
    text = str(source)
    return (
        not Path(text).exists()
        and not text.startswith((".", "/", "~"))
        and text.count("/") <= 1
        and all(part for part in text.split("/"))
    )


def read_local_conll(folder, files, cfg):
    folder = resolve_path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"NER source folder not found: {folder}")
    splits, read_stats = {}, {}
    for split in SPLITS:
        if split not in files:
            raise DataError(f"params: ner.prepare.files has no {split!r} entry")
        path = folder / files[split]
        if not path.is_file():
            raise FileNotFoundError(f"{split} file not found: {path}")
        sentences, stats = conll.read_conll(
            path,
            word_column=cfg["word_column"],
            tag_column=cfg["tag_column"],
            num_columns=cfg.get("num_columns"),
        )
        splits[split] = [
            {"tokens": list(s.tokens), "tags": list(s.tags), "line": s.line, "doc": s.doc, "source": str(path)}
            for s in sentences
        ]
        read_stats[split] = {
            "docstart_lines_skipped": stats.docstart_lines,
            "documents": stats.documents,
        }
    return splits, read_stats


def load_hub_dataset(source, cfg):
    """`datasets.load_dataset`, with a clear error when neither a folder nor a reachable hub id."""
    import datasets

    try:
        return datasets.load_dataset(source, cfg.get("hub_config"))
    except Exception as err:  # the hub client raises many types (offline, 404, auth)
        raise DataError(
            f"{source!r} is not a local folder ({resolve_path(source)} does not exist) and could not be "
            f"loaded from the Hugging Face hub: {type(err).__name__}: {err}"
        ) from err


def read_hub(source, cfg):
    """Loads a hub dataset whose tags are a ClassLabel sequence (e.g. eriktks/conll2003)."""
    ds = load_hub_dataset(source, cfg)
    tokens_col, tags_col = cfg.get("hub_tokens_column", "tokens"), cfg.get("hub_tags_column", "ner_tags")
    splits = {}
    for split in SPLITS:
        if split not in ds:
            raise DataError(f"hub dataset {source!r} has no {split!r} split (has: {', '.join(ds)})")
        part = ds[split]
        for col in (tokens_col, tags_col):
            if col not in part.column_names:
                raise DataError(
                    f"hub dataset {source!r} split {split!r} has no column {col!r} "
                    f"(columns: {', '.join(part.column_names)})"
                )
        names = part.features[tags_col].feature.names
        rows = []
        for i, ex in enumerate(part):
            tags = [names[t] for t in ex[tags_col]]
            for tag in tags:
                if not conll.TAG_PATTERN.fullmatch(tag):
                    raise conll.TagSchemeError(f"{source}[{split}][{i}]: invalid tag {tag!r}")
            if ex[tokens_col]:
                rows.append({"tokens": ex[tokens_col], "tags": tags, "line": i, "doc": 0, "source": f"{source}[{split}]"})
        splits[split] = rows
    return splits, {split: {"docstart_lines_skipped": 0, "documents": 0} for split in SPLITS}


def where(row, index=None):
    """`file:line` of a sentence (or of one of its tokens) for error messages."""
    line = row["line"] + (index or 0)
    return f"{row['source']}:{line}"


def normalise_scheme(splits, target):
    """Detects the source scheme on all splits and converts every split to `target`."""
    source = conll.detect_scheme(row["tags"] for rows in splits.values() for row in rows)
    for rows in splits.values():
        for row in rows:
            row["tags"] = conll.convert_tags(row["tags"], source, target)
    return source


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
        counts.update(t for t, _, _ in conll.get_spans(row["tags"], scheme))
    return dict(sorted(counts.items()))


def build_stats(splits, read_stats, words, cfg, scheme, source_scheme):
    stats = {"source_scheme": source_scheme, "tag_scheme": scheme, "splits": {}}
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
            **read_stats[split],
        }
    return stats


def prepare_ner(cfg, out):
    import datasets

    source = cfg["source"]
    if resolve_path(source).exists() or not looks_like_hub_id(source):
        splits, read_stats = read_local_conll(source, cfg["files"], cfg)
    else:
        splits, read_stats = read_hub(source, cfg)
    for split, rows in splits.items():
        if not rows:
            raise DataError(f"the {split} split of {source} contains no sentences")

    scheme = cfg["tag_scheme"]
    if scheme not in ("IOB2", "IOBES"):
        raise DataError(f"params: ner.prepare.tag_scheme must be IOB2 or IOBES, got {scheme!r}")
    types = check_labels(splits)
    source_scheme = normalise_scheme(splits, scheme)
    tag_names = tag_names_for(types, scheme)
    train = splits["train"]

    words = Vocabulary.from_iterable(
        (normalize_word(t, cfg["lowercase"], cfg["digits_to_zero"]) for row in train for t in row["tokens"]),
        min_count=cfg["min_word_count"],
    )
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
    out.mkdir(parents=True, exist_ok=True)
    dataset.save_to_disk(str(out / "data"))
    save_json(
        {
            "tokenizer_version": TOKENIZER_VERSION,
            "lowercase": cfg["lowercase"],
            "digits_to_zero": cfg["digits_to_zero"],
            "max_word_chars": cfg["max_word_chars"],
            "tag_scheme": scheme,
            "tags": tag_names,
            "words": words.to_list(),
            "chars": chars.to_list(),
        },
        out / "vocab.json",
    )
    stats = build_stats(splits, read_stats, words, cfg, scheme, source_scheme)
    stats["vocab"] = {"words": len(words), "chars": len(chars), "tags": len(tag_names)}
    save_json(stats, out / "stats.json")
    return stats


def prepare_sentiment(cfg, out, seed):
    """Document classification data; see pipelines/documents.py."""
    from pipelines import documents  # imported here: documents imports this module

    return documents.prepare(cfg, out, seed)


def main_sentiment(params, out):
    from pipelines import documents

    try:
        stats = prepare_sentiment(params["sentiment"]["prepare"], out, params["seed"])
    except (DataError, FileNotFoundError) as err:
        print(f"prepare: error: {err}", file=sys.stderr)
        return 1
    for line in documents.summary_lines(stats):
        print(line)
    print(f"wrote {out}")
    return 0


def main(argv=None):
    task, params, out = stage_setup(__doc__, argv, tasks=("ner", "sentiment"))
    if task == "sentiment":
        return main_sentiment(params, out)
    cfg = params["ner"]["prepare"]
    try:
        stats = prepare_ner(cfg, out)
    except (DataError, conll.ConllFormatError, conll.TagSchemeError, FileNotFoundError) as err:
        print(f"prepare: error: {err}", file=sys.stderr)
        return 1
    for split, s in stats["splits"].items():
        print(
            f"{split}: {s['sentences']} sentences, {s['tokens']} tokens, "
            f"{sum(s['entities'].values())} entities, OOV rate {s['oov_rate']:.2%}"
        )
    print(f"vocabulary: {stats['vocab']}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
