"""Trains tiny NER and sentiment models with the pipeline under one backend; saves their predictions.

Run by tests/test_backends.py in a subprocess, because the backend is fixed when
Keras is first imported:

    KERAS_BACKEND=torch python -m tests.backend_worker PARAMS torch RESULTS_DIR   # or jax

Writes RESULTS_DIR/predictions.json (backend, tag ids, probabilities) and
ner_logits.npy (raw tagger scores on NER_TEXTS, padded as one batch).
"""

import json
import sys
from pathlib import Path

import numpy as np

# Raw texts scored on both sides: known names, unknown words, digits, markup.
NER_TEXTS = [
    "John Smith visited Paris on Monday .",
    "Reuters said Anna Weber would leave Zürich .",
    "Shares in Acme Corp rose 7.25 percent in Tokyo .",
    "It rained all day",
]
SENTIMENT_TEXTS = [
    "I loved every minute . superb direction",
    "a dull mess<br />awful direction !",
    "unknownword " * 20,
    "",
]


def run_task(params, name):
    """Prepares and trains one task as the stages do; returns (record, the saved model)."""
    import keras

    from pipelines.core.config import output_dir
    from pipelines.core.trainer import train
    from pipelines.tasks import load_task

    task = load_task(name)
    out = output_dir(params, name)
    task.prepare(params[name]["prepare"], out, params["seed"])
    summary, details = train(task, params, out)
    # The saved best model, as export and the TensorFlow side will load it.
    model = keras.saving.load_model(out / "model.keras")
    return {"summary": summary, "runtime": details["runtime"]}, task.encoder(out), task.load_split(out, "test"), model


def run_ner(params):
    import keras

    from pipelines.core.batching import pad_batch
    from pipelines.tasks.ner.model import predict_tag_ids
    from pipelines.text.tokenizer import tokenize

    record, encoder, test, model = run_task(params, "ner")
    features = encoder.encode([tokenize(t) for t in NER_TEXTS])
    batch = {name: pad_batch(values) for name, values in features.items()}
    logits = keras.ops.convert_to_numpy(model(batch, training=False))
    record["test_tag_ids"] = [ids.tolist() for ids in predict_tag_ids(model, encoder.encode(test.tokens))]
    record["text_tag_ids"] = [ids.tolist() for ids in predict_tag_ids(model, features)]
    return record, logits


def run_sentiment(params):
    from pipelines.tasks.sentiment.model import predict_probabilities

    record, encoder, test, model = run_task(params, "sentiment")
    texts = encoder.encode([encoder.tokens(t) for t in SENTIMENT_TEXTS])
    record["test_probabilities"] = predict_probabilities(model, encoder.encode(test.tokens)).tolist()
    record["text_probabilities"] = predict_probabilities(model, texts).tolist()
    return record


def main(argv):
    params_path, backend, results = argv
    import keras

    from pipelines.core.config import load_params

    # A missing or wrong KERAS_BACKEND would silently compare TensorFlow with itself.
    if keras.backend.backend() != backend:
        print(f"backend_worker: error: Keras runs on {keras.backend.backend()!r}, expected {backend!r}",
              file=sys.stderr)
        return 2
    params = load_params(params_path)
    ner, logits = run_ner(params)
    sentiment = run_sentiment(params)
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    np.save(results / "ner_logits.npy", logits)
    record = {"backend": keras.backend.backend(), "ner": ner, "sentiment": sentiment}
    (results / "predictions.json").write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
