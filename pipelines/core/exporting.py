"""The export stage's driver and the SavedModel wrapper that predict and the notebooks use."""

import shutil
import time
from pathlib import Path

from pipelines.core.errors import DataError, StageError
from pipelines.core.io import save_json


def export(task, params, out):
    """Writes out/saved_model, checks it against the in-memory model on the test split and
    writes out/export.json; raises StageError when they disagree. Returns the report."""
    cfg = params[task.name]["export"]
    encoder = task.encoder(out)
    model = task.load_model(out / "model.keras")
    split = task.load_split(out, "test")
    report = write_and_check(
        task.serving_archive(model, encoder.vocab), out,
        lambda saved_dir: task.check_parity(saved_dir, model, encoder, split, cfg),
    )
    if report["mismatches"]:
        raise StageError(
            f"the SavedModel disagrees with the in-memory model on {report['mismatches']} of {report['checked']} "
            f"test {report['unit']}; first: {report['first_mismatches'][0]}"
        )
    return report


def write_and_check(archive, out, check):
    """Writes `archive` to out/saved_model, runs `check(saved_dir)` -> ParityReport and
    writes the report to out/export.json; returns the report."""
    saved_dir = out / "saved_model"
    if saved_dir.exists():
        shutil.rmtree(saved_dir)
    start = time.perf_counter()
    archive.write_out(str(saved_dir), verbose=False)
    export_seconds = time.perf_counter() - start
    start = time.perf_counter()
    parity = check(saved_dir)
    report = {
        "saved_model": saved_dir.name,
        "checked": parity.checked,
        "unit": parity.unit,
        "mismatches": len(parity.mismatches),
        "first_mismatches": parity.mismatches[:5],
        "export_seconds": round(export_seconds, 1),
        "parity_seconds": round(time.perf_counter() - start, 1),
    }
    save_json(report, out / "export.json")
    return report


def text_problem(text):
    """Why `text` cannot be a string tensor's element (not a str, not valid Unicode), or None."""
    if not isinstance(text, str):
        return f"expected a str, got {type(text).__name__}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        # A lone surrogate: a "\ud800" JSON escape, or undecodable bytes that Python kept
        # as surrogates (argv, surrogateescape). TensorFlow fails on it with a traceback.
        return f"not valid Unicode (lone surrogate \\u{ord(text[err.start]):04x} at character {err.start + 1})"
    return None


def check_texts(texts):
    """`texts` as a list of str; a DataError (a ValueError) names `texts[i]` when one is bad."""
    if isinstance(texts, (str, bytes)):
        raise DataError(f"texts: expected a list of str, got a single {type(texts).__name__} "
                        "(wrap one text in a list)")
    try:
        texts = list(texts)
    except TypeError:
        raise DataError(f"texts: expected a list of str, got {type(texts).__name__}") from None
    for i, text in enumerate(texts):
        problem = text_problem(text)
        if problem:
            raise DataError(f"texts[{i}]: {problem}")
    return texts


class ServedModel:
    """An exported SavedModel's `serving_default` signature, called in batches of raw text."""

    def __init__(self, saved_model_dir, batch_size=64):
        path = Path(saved_model_dir)
        if not (path / "saved_model.pb").is_file():
            raise FileNotFoundError(f"no SavedModel at {path} (expected {path / 'saved_model.pb'})")
        import tensorflow as tf  # after the check, so a wrong path answers at once

        self._tf = tf
        self.serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        self.batch_size = batch_size

    def batches(self, texts):
        """Yields (texts of the batch, the signature's outputs for them); checks every text
        first (check_texts), so a bad one raises before any batch runs."""
        texts = check_texts(texts)
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            yield batch, self.serve(text=self._tf.constant(batch, dtype=self._tf.string))
