"""Sentiment labels: integer or string labels -> class names and ids 0..K-1, checked
against train (every validation/test label must occur in train)."""

from pipelines.core.errors import DataError
from pipelines.tasks.sentiment.reader import SPLITS, is_int


def label_map(train_docs, label_names=None):
    """(names, raw label -> id, "integer" | "string") from the train labels and params."""
    first = train_docs[0]
    kind = "integer" if is_int(first.label) else "string"
    for doc in train_docs:
        if is_int(doc.label) != (kind == "integer"):
            raise DataError(
                f"{doc.where}: label {doc.label!r} is not an {kind} like the first train label "
                f"({first.label!r} at {first.where}); labels must be all integers or all strings"
            )
    if label_names is not None:
        names = list(label_names)
        keys = range(len(names)) if kind == "integer" else names
        return names, {k: i for i, k in enumerate(keys)}, kind
    values = sorted({doc.label for doc in train_docs})
    return [str(v) for v in values], {v: i for i, v in enumerate(values)}, kind


def label_ids(splits, names, ids, kind, label_names_given):
    """{split: [label id]}; every label must be known and val/test labels must occur in train."""
    out, seen = {}, set()
    for split in [s for s in SPLITS if s in splits]:
        row = []
        for doc in splits[split]:
            lid = ids.get(doc.label) if is_int(doc.label) == (kind == "integer") else None
            if lid is None and label_names_given and (split == "train" or is_int(doc.label) == (kind == "integer")):
                if kind == "integer":
                    raise DataError(
                        f"{doc.where}: label {doc.label!r} is outside 0..{len(names) - 1} "
                        f"(label_names: {', '.join(names)})"
                    )
                raise DataError(f"{doc.where}: label {doc.label!r} is not one of label_names ({', '.join(names)})")
            if split != "train" and (lid is None or lid not in seen):
                known = ", ".join(names[i] for i in sorted(seen))
                raise DataError(
                    f"{doc.where}: label {doc.label!r} in the {split} split never occurs in train "
                    f"(train labels: {known})"
                )
            row.append(lid)
        out[split] = row
        if split == "train":
            seen = set(row)
            if len(seen) < 2:
                raise DataError(
                    f"the train split has only one label ({names[row[0]]!r}); a classifier needs at least two"
                )
    return out
