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

from pipelines.core.config import load_params, output_dir
from pipelines.core.errors import DataError, ParamsError
from pipelines.tasks import TASK_NAMES, load_task


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
    parser.add_argument("task", choices=list(TASK_NAMES))
    parser.add_argument("texts", nargs="*", help="texts to run the model on")
    parser.add_argument("--model", help="SavedModel folder (default: the export stage's output)")
    parser.add_argument("--jsonl", help="JSON Lines file of inputs, or - for stdin")
    parser.add_argument("--params", default=None)
    # Intermixed: texts may come after --model without argparse binding them early.
    args = parser.parse_intermixed_args(argv)
    if bool(args.texts) == bool(args.jsonl):
        parser.error("give texts on the command line or --jsonl FILE (--jsonl - reads stdin), not both")
    try:
        model_dir = args.model or output_dir(load_params(args.params), args.task) / "saved_model"
        if args.jsonl == "-":
            texts = read_jsonl(sys.stdin, "<stdin>")
        elif args.jsonl:
            if not Path(args.jsonl).is_file():
                raise FileNotFoundError(f"input file not found: {args.jsonl}")
            with open(args.jsonl, encoding="utf-8") as f:
                texts = read_jsonl(f, args.jsonl)
        else:
            texts = args.texts
        predictor = load_task(args.task).predictor(model_dir)
    except (ValueError, FileNotFoundError, UnicodeDecodeError, DataError, ParamsError) as err:
        print(f"predict: error: {err}", file=sys.stderr)
        return 1
    for result in predictor.predict(texts):
        print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
