"""Trains tiny NER and sentiment models with the pipeline under one backend; saves their predictions.

Run by tests/test_backends.py in a subprocess, because the backend is fixed when
Keras is first imported:

    KERAS_BACKEND=torch python -m tests.backend_worker PARAMS BACKEND RESULTS_DIR

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


def run_ner(params):
    import keras

    from pipelines.batching import pad_batch
    from pipelines.config import output_dir
    from pipelines.features import TokenEncoder
    from pipelines.ner import load_split, predict_tag_ids
    from pipelines.prepare import prepare_ner
    from pipelines.tokenizer import tokenize
    from pipelines.train import train_ner

    out = output_dir(params, "ner")
    prepare_ner(params["ner"]["prepare"], out)
    summary = train_ner(params, out)
    encoder = TokenEncoder.from_vocab_file(out / "vocab.json")
    # The saved best model, as export and the TensorFlow side will load it.
    model = keras.saving.load_model(out / "model.keras")
    test_tokens, _, _ = load_split(out / "data", "test")
    text_tokens = [tokenize(t) for t in NER_TEXTS]
    features = encoder.encode(text_tokens)
    batch = {name: pad_batch(values) for name, values in features.items()}
    logits = keras.ops.convert_to_numpy(model(batch, training=False))
    return {
        "summary": summary,
        "test_tag_ids": [ids.tolist() for ids in predict_tag_ids(model, encoder.encode(test_tokens))],
        "text_tag_ids": [ids.tolist() for ids in predict_tag_ids(model, features)],
    }, logits


def run_sentiment(params):
    import keras

    from pipelines.config import output_dir
    from pipelines.prepare import prepare_sentiment
    from pipelines.sentiment import DocumentEncoder, load_documents, predict_probabilities, train_sentiment

    out = output_dir(params, "sentiment")
    prepare_sentiment(params["sentiment"]["prepare"], out, params["seed"])
    summary = train_sentiment(params, out)
    encoder = DocumentEncoder.from_vocab_file(out / "vocab.json")
    model = keras.saving.load_model(out / "model.keras")
    _, test_tokens, _, _ = load_documents(out / "data", "test")
    texts = encoder.encode([encoder.tokens(t) for t in SENTIMENT_TEXTS])
    return {
        "summary": summary,
        "test_probabilities": predict_probabilities(model, encoder.encode(test_tokens)).tolist(),
        "text_probabilities": predict_probabilities(model, texts).tolist(),
    }


def main(argv):
    params_path, backend, results = argv
    import keras

    from pipelines.config import load_params

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
