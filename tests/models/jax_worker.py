"""Trains, predicts with and saves tiny models under JAX; run by tests/models/test_jax_backend.py.

Keras fixes its backend at first import, so this runs in its own process:

    KERAS_BACKEND=jax python -m tests.models.jax_worker OUT_DIR

For each case of CASES it fits a tiny model for EPOCHS epochs on batches of
two shapes (so XLA is on, as always under JAX), records how many times
train_step, test_step and predict_step were traced (each trace is one XLA
compilation), and writes OUT_DIR/<case>.keras, <case>_inputs.npz (the batch
predicted on) and <case>_outputs.npz (logits, predict_on_batch, predict).
It also writes crf.npz: CRF weights, inputs, and Viterbi paths and
log-likelihoods computed eagerly and under `jax.jit`; and OUT_DIR/record.json.
Imports `models` only, not `pipelines`.
"""

import json
import sys
from pathlib import Path

import numpy as np

WORD_VOCAB, CHAR_VOCAB, NUM_TAGS, WIDTH = 30, 15, 5, 4
TAGGER = dict(word_dim=6, char_dim=4, char_filters=5, hidden_size=7)
CLASSIFIER = dict(embedding_dim=6, hidden_size=5, attention_units=4)
# name: (model kind, constructor arguments, padded batches?, extra checks). Extra
# checks cost XLA compilations, so each case runs only some: "validation"
# (fit with validation_data: test_step), "predict" (Model.predict, which
# purges the variables while it runs) and "weight_change" (the cached
# predict_step follows new CRF weights).
CASES = {
    "tagger_crf_masked": (
        "tagger", dict(use_crf=True, rnn_mask=True), True, ("validation", "predict", "weight_change")),
    "tagger_crf_padding_free": (
        "tagger", dict(use_crf=True, rnn_mask=False, char_encoder="none"), False, ("weight_change",)),
    "tagger_softmax_padding_free": (
        "tagger", dict(use_crf=False, rnn_mask=False, rnn_type="gru"), False, ()),
    "classifier_sigmoid_masked": (
        "classifier", dict(num_classes=2, pooling="max", rnn_mask=True), True, ("predict",)),
    "classifier_softmax_padding_free": (
        "classifier", dict(num_classes=3, pooling="attention", rnn_mask=False), False, ("validation",)),
}
# Batch shapes (batch, time) of one epoch: two distinct shapes, one repeated.
TRAIN_SHAPES = [(4, 6), (3, 3), (4, 6)]
EPOCHS = 20  # steps are cheap once compiled; enough for varied tag paths


def _words(rng, batch, time, padded):
    words = rng.integers(2, WORD_VOCAB, size=(batch, time)).astype("int32")
    if padded:
        lengths = rng.integers(1, time + 1, size=batch)
        lengths[0] = time
        words[np.arange(time)[None] >= lengths[:, None]] = 0
    return words


def make_batch(kind, rng, batch, time, padded, num_classes=None):
    """(x, y) with right padding when `padded`, else every row full length."""
    words = _words(rng, batch, time, padded)
    if kind == "tagger":
        chars = rng.integers(1, CHAR_VOCAB, size=(batch, time, WIDTH)).astype("int32")
        chars[words == 0] = 0
        tags = np.where(words > 0, words % NUM_TAGS, 0).astype("int32")
        return {"words": words, "chars": chars}, tags
    return {"words": words}, (words[:, 0] % num_classes).astype("int32")


def build(kind, kwargs):
    if kind == "tagger":
        from models.tagger import SequenceTagger

        return SequenceTagger(WORD_VOCAB, CHAR_VOCAB, NUM_TAGS, **{**TAGGER, **kwargs})
    from models.classifier import TextClassifier

    return TextClassifier(WORD_VOCAB, **{**CLASSIFIER, **kwargs})


def count_traces(model, names=("train_step", "test_step", "predict_step")):
    """Wraps the model's step methods; returns a dict name -> traces so far.

    Keras' JAX trainer calls them only while `jax.jit` traces, so a trace is
    a compilation.
    """
    counts = dict.fromkeys(names, 0)
    for name in names:
        method = getattr(model, name)

        def counted(*args, _method=method, _name=name):
            counts[_name] += 1
            return _method(*args)

        setattr(model, name, counted)
    return counts


def run_case(name, out, keras):
    kind, kwargs, padded, checks = CASES[name]
    rng = np.random.default_rng(len(name))
    model = build(kind, kwargs)
    num_classes = kwargs.get("num_classes")
    train = [make_batch(kind, rng, b, t, padded, num_classes) for b, t in TRAIN_SHAPES]
    val = [make_batch(kind, rng, 2, 5, padded, num_classes)]

    class Batches(keras.utils.PyDataset):
        def __init__(self, batches):
            super().__init__()
            self.batches = batches

        def __len__(self):
            return len(self.batches)

        def __getitem__(self, i):
            return self.batches[i]

    model.compile(optimizer=keras.optimizers.Adam(0.05), jit_compile="auto")
    traces = count_traces(model)
    validation = Batches(val) if "validation" in checks else None
    history = model.fit(Batches(train), validation_data=validation, epochs=EPOCHS, verbose=0)
    x, _ = make_batch(kind, rng, 3, 7, padded, num_classes)
    record = {
        "jit_compile": model.jit_compile,
        "losses": [float(v) for v in history.history["loss"]],
        "distinct_train_shapes": len(set(TRAIN_SHAPES)),
        "traces_after_fit": dict(traces),
    }
    outputs = {
        "logits": keras.ops.convert_to_numpy(model(x, training=False)),
        "predict_on_batch": np.asarray(model.predict_on_batch(x)),
    }
    if "predict" in checks:
        outputs["predict"] = np.asarray(model.predict(x, batch_size=3, verbose=0))
    outputs["predict_on_batch_again"] = np.asarray(model.predict_on_batch(x))
    record["traces_after_predict"] = dict(traces)
    model.save(out / f"{name}.keras")
    np.savez(out / f"{name}_inputs.npz", **x)
    if "weight_change" in checks:
        # Changed weights, same shapes: the cached jitted predict_step must read
        # the new CRF transitions, not constants from its first trace.
        crf = model.get_layer("crf")
        start = np.zeros(NUM_TAGS, "float32")
        start[3] = 1e4
        trans = np.full((NUM_TAGS, NUM_TAGS), -1e4, "float32")
        trans[:, 3] = 1e4
        crf.start_transitions.assign(start)
        crf.transitions.assign(trans)
        outputs["predict_on_batch_all_3"] = np.asarray(model.predict_on_batch(x))
        if "predict" in checks:
            outputs["predict_all_3"] = np.asarray(model.predict(x, batch_size=3, verbose=0))
        record["traces_after_weight_change"] = dict(traces)
    np.savez(out / f"{name}_outputs.npz", **outputs)
    return record


def run_crf(out, keras):
    """Viterbi paths and log-likelihoods of a CRF, eager and under jax.jit, for several lengths."""
    import jax

    from models.crf import CRF

    rng = np.random.default_rng(7)
    crf = CRF(NUM_TAGS)
    crf.build((None, None, NUM_TAGS))
    weights = [rng.normal(size=w.shape).astype("float32") for w in crf.weights]
    crf.set_weights(weights)
    arrays = {f"weight_{i}": w for i, w in enumerate(weights)}

    @jax.jit
    def decode(emissions, mask):
        return crf.decode(emissions, mask)

    @jax.jit
    def log_likelihood(emissions, tags, mask):
        return crf.log_likelihood(emissions, tags, mask)

    for time in (1, 2, 7):
        emissions = rng.normal(size=(4, time, NUM_TAGS)).astype("float32") * 2
        tags = rng.integers(0, NUM_TAGS, size=(4, time)).astype("int32")
        mask = np.ones((4, time), bool)
        mask[1, time // 2:] = False  # right padding
        mask[2, 0] = False  # padding that is not on the right
        mask[3] = False  # an empty row
        arrays.update({
            f"emissions_{time}": emissions, f"tags_{time}": tags, f"mask_{time}": mask,
            f"decode_eager_{time}": keras.ops.convert_to_numpy(crf.decode(emissions, mask)),
            f"decode_jit_{time}": np.asarray(decode(emissions, mask)),
            f"ll_eager_{time}": keras.ops.convert_to_numpy(crf.log_likelihood(emissions, tags, mask)),
            f"ll_jit_{time}": np.asarray(log_likelihood(emissions, tags, mask)),
        })
    np.savez(out / "crf.npz", **arrays)


def main(argv):
    (out,) = argv
    import keras

    # A missing KERAS_BACKEND would silently compare TensorFlow with itself.
    if keras.backend.backend() != "jax":
        print(f"jax_worker: error: Keras runs on {keras.backend.backend()!r}, expected 'jax'", file=sys.stderr)
        return 2
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    import inspect

    from models.prediction import PredictOutputsMixin

    record = {"backend": keras.backend.backend(), "cases": {},
              "predict_step_parameters": list(inspect.signature(PredictOutputsMixin.predict_step).parameters)}
    for name in CASES:
        record["cases"][name] = run_case(name, out, keras)
    run_crf(out, keras)
    (out / "record.json").write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
