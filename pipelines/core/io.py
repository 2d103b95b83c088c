"""JSON and text files written crash-safe, and loading from the Hugging Face hub."""

import json
import os
import tempfile
from pathlib import Path

from pipelines.core.errors import DataError

# The pretrain stage's output, which the train stage reads (pipelines/core/pretraining.py).
PRETRAINED_ENCODER_FILE = "pretrained_encoder.npz"

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path, write, mode="w", before_replace=None, **open_kwargs):
    """Calls write(file) on a temporary file beside `path`, then moves it into place.

    A kill during the write leaves the previous file (or none), never half a file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; keep what a plain open() would give
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            write(f)
        if before_replace:  # a test hook (pipelines/core/faults.py)
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_json(obj, path, before_replace=None):
    def write(f):
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")

    atomic_write(path, write, before_replace=before_replace, encoding="utf-8")


def save_prepared(out, dataset, vocab):
    """The prepare stage's outputs of any task: out/data (a datasets.DatasetDict) and out/vocab.json
    (tokenizer settings and vocabularies, from which the encoder and the SavedModel are built)."""
    out.mkdir(parents=True, exist_ok=True)
    dataset.save_to_disk(str(out / "data"))
    save_json(vocab, out / "vocab.json")


def save_weight_groups(path, weights):
    """{group: [arrays]} (a pretrained encoder: embedding, forward, backward) -> one .npz, crash-safe."""
    import numpy as np

    arrays = {f"{key}/{i}": np.asarray(w) for key, ws in weights.items() for i, w in enumerate(ws)}
    atomic_write(path, lambda f: np.savez(f, **arrays), mode="wb")


def load_weight_groups(path):
    """The weights `save_weight_groups` wrote, or None when the file holds none (pretraining off)."""
    import numpy as np

    try:
        with np.load(path) as data:
            names = list(data.files)
            grouped = {}
            for name in names:
                key, _, index = name.partition("/")
                grouped.setdefault(key, {})[int(index)] = data[name]
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a weights file ({err}); rerun the pretrain stage") from None
    if not grouped:
        return None
    return {key: [parts[i] for i in sorted(parts)] for key, parts in grouped.items()}


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def looks_like_hub_id(source):
    """`owner/name` or `name` that is not an existing local path."""
    text = str(source)
    return (
        not Path(text).exists()
        and not text.startswith((".", "/", "~"))
        and text.count("/") <= 1
        and all(part for part in text.split("/"))
    )


def load_hub_dataset(source, cfg):
    """`datasets.load_dataset`, with a clear error when neither a folder nor a reachable hub id."""
    import datasets

    from pipelines.core.config import resolve_path

    try:
        return datasets.load_dataset(source, cfg.get("hub_config"))
    except Exception as err:  # the hub client raises many types (offline, 404, auth)
        raise DataError(
            f"{source!r} is not a local folder ({resolve_path(source)} does not exist) and could not be "
            f"loaded from the Hugging Face hub: {type(err).__name__}: {err}"
        ) from err
