"""Runs an exported SavedModel on raw text.

Usage:
  python -m pipelines.predict ner "EU rejects German call to boycott British lamb."
  python -m pipelines.predict sentiment "A wonderful, moving film."
  python -m pipelines.predict ner --jsonl inputs.jsonl      # or --jsonl - for stdin
Each JSON Lines input is an object with a "text" field (or a bare JSON string).
NER output lines are {"text": ..., "entities": [{"type", "text", "start", "end"}]}
with character offsets into the text (end exclusive); sentiment output lines are
{"text": ..., "label": ..., "probabilities": {label: p, ...}}.
"""

import argparse
import json
import sys
from pathlib import Path

from pipelines.config import load_params, output_dir


class ServedModel:
    """An exported SavedModel's `serving_default` signature, called in batches of raw text."""

    def __init__(self, saved_model_dir, batch_size=64):
        import tensorflow as tf

        path = Path(saved_model_dir)
        if not (path / "saved_model.pb").is_file():
            raise FileNotFoundError(f"no SavedModel at {path} (expected {path / 'saved_model.pb'})")
        self._tf = tf
        self.serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        self.batch_size = batch_size

    def batches(self, texts):
        """Yields (texts of the batch, the signature's outputs for them)."""
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            yield batch, self.serve(text=self._tf.constant(batch, dtype=self._tf.string))


class NerPredictor(ServedModel):
    """Maps the tagger SavedModel's tags to character spans."""

    def predict(self, texts):
        from pipelines.conll import get_spans
        from pipelines.tokenizer import tokenize_with_offsets

        results = []
        for batch, out in self.batches(texts):
            lengths = out["num_tokens"].numpy()
            tokens, tags = out["tokens"].numpy(), out["tags"].numpy()
            for row, text in enumerate(batch):
                n = int(lengths[row])
                offsets = tokenize_with_offsets(text)
                served = [t.decode("utf-8") for t in tokens[row, :n]]
                if [t for t, _, _ in offsets] != served:
                    raise RuntimeError("the SavedModel's tokenizer disagrees with pipelines.tokenizer; "
                                       "was the model exported by another version of this project?")
                row_tags = [t.decode("utf-8") for t in tags[row, :n]]
                entities = []
                for label, first, last in get_spans(row_tags, "IOB2"):
                    s, e = offsets[first][1], offsets[last - 1][2]
                    entities.append({"type": label, "text": text[s:e], "start": s, "end": e})
                results.append({"text": text, "entities": entities})
        return results


def read_jsonl(stream, name):
    texts = []
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{name}:{line_no}: not valid JSON: {err.msg}") from err
        if isinstance(obj, str):
            texts.append(obj)
        elif isinstance(obj, dict) and isinstance(obj.get("text"), str):
            texts.append(obj["text"])
        else:
            raise ValueError(f"{name}:{line_no}: expected a JSON string or an object with a string \"text\" field")
    return texts


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Run an exported SavedModel on raw text.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("task", choices=["ner", "sentiment"])
    parser.add_argument("texts", nargs="*", help="texts to run the model on")
    parser.add_argument("--model", help="SavedModel folder (default: the export stage's output)")
    parser.add_argument("--jsonl", help="JSON Lines file of inputs, or - for stdin")
    parser.add_argument("--params", default=None)
    # Intermixed: texts may come after --model without argparse binding them early.
    args = parser.parse_intermixed_args(argv)
    if bool(args.texts) == bool(args.jsonl):
        parser.error("give either texts on the command line or --jsonl FILE, not both")
    model_dir = args.model or output_dir(load_params(args.params), args.task) / "saved_model"
    try:
        if args.jsonl == "-":
            texts = read_jsonl(sys.stdin, "<stdin>")
        elif args.jsonl:
            if not Path(args.jsonl).is_file():
                raise FileNotFoundError(f"input file not found: {args.jsonl}")
            with open(args.jsonl, encoding="utf-8") as f:
                texts = read_jsonl(f, args.jsonl)
        else:
            texts = args.texts
        if args.task == "sentiment":
            from pipelines.sentiment import SentimentPredictor

            predictor = SentimentPredictor(model_dir)
        else:
            predictor = NerPredictor(model_dir)
    except (ValueError, FileNotFoundError, UnicodeDecodeError) as err:
        print(f"predict: error: {err}", file=sys.stderr)
        return 1
    for result in predictor.predict(texts):
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
