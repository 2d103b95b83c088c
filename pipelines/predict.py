"""Runs an exported SavedModel on raw text.

Usage:
  python -m pipelines.predict ner "EU rejects German call to boycott British lamb."
  python -m pipelines.predict sentiment "A wonderful, moving film."
  python -m pipelines.predict ner --jsonl inputs.jsonl      # or --jsonl - for stdin
Each JSON Lines input is an object with a "text" field (or a bare JSON string),
in UTF-8 (byte order marks are ignored); blank lines are skipped and
counted on stderr. Output is one JSON line per text, in UTF-8.
NER output lines are {"text": ..., "entities": [{"type", "text", "start", "end", "score"}]}
with character offsets into the text (end exclusive) and the entity's confidence
(the CRF's probability that exactly this span has exactly this type; --min-score P
leaves out entities below P); a text without tokens has no entities. Sentiment output lines are
{"text": ..., "label": ..., "empty": false, "probabilities": {label: p, ...}};
for a text without tokens (empty, whitespace or only markup) they are
{"text": ..., "label": null, "empty": true, "probabilities": {...}}, the
probabilities being the model's answer for one unknown word.
Bad input stops with one line on stderr naming its source and exit code 1:
  predict: error: inputs.jsonl:12: not valid UTF-8 (byte 0xe9 at column 11)
where the source is FILE:LINE, <stdin>:LINE or argv[N] (argv[1] is the task),
and columns count characters from 1.
"""

import argparse
import codecs
import json
import os
import sys
from pathlib import Path

from pipelines.core.cli import native_logs_filtered
from pipelines.core.config import load_params, output_dir
from pipelines.core.errors import DataError, ParamsError
from pipelines.core.exporting import text_problem
from pipelines.tasks import TASK_NAMES, load_task

JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "a boolean", type(None): "null"}


def first_bad_byte(raw):
    """The offset of the first byte of `raw` that is not UTF-8, or None."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start
    return None


def column(raw, offset):
    """The column (characters, from 1) of byte `offset` of `raw`, whose bytes before it are UTF-8."""
    return len(raw[:offset].decode("utf-8")) + 1


def not_utf8(raw, offset):
    return f"not valid UTF-8 (byte 0x{raw[offset]:02x} at column {column(raw, offset)})"


def decode_line(raw, where):
    """A line's bytes as str; a DataError at its first NUL or non-UTF-8 byte, whichever comes first."""
    bad = first_bad_byte(raw)
    nul = raw.find(b"\0", 0, len(raw) if bad is None else bad)
    if nul >= 0:
        # JSON writes a NUL in a text as "\u0000"; raw NUL bytes mean UTF-16 or binary data.
        raise DataError(f"{where}: NUL byte at column {column(raw, nul)}; "
                        "JSON Lines input must be UTF-8 text (is it UTF-16 or binary?)")
    if bad is not None:
        raise DataError(f"{where}: {not_utf8(raw, bad)}")
    return raw.decode("utf-8")


def text_of(obj, where):
    """The text of one parsed JSON line: a string, or an object's "text" string."""
    expected = 'expected a JSON string or an object with a string "text" field'
    if isinstance(obj, dict):
        if "text" not in obj:
            raise DataError(f'{where}: {expected}, got an object without "text"')
        if not isinstance(obj["text"], str):
            raise DataError(f'{where}: {expected}, got an object whose "text" is {JSON_TYPES[type(obj["text"])]}')
        obj = obj["text"]
    elif not isinstance(obj, str):
        raise DataError(f"{where}: {expected}, got {JSON_TYPES[type(obj)]}")
    problem = text_problem(obj)  # a "\ud800" escape parses, but is no Unicode text
    if problem:
        raise DataError(f"{where}: the text is {problem}")
    return obj


def parse_json(line, where):
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: not valid JSON: {err.msg} at column {err.colno}") from None
    except RecursionError:
        raise DataError(f"{where}: cannot read this JSON: nested too deeply") from None
    except ValueError as err:  # e.g. an integer of over 4,300 digits
        raise DataError(f"{where}: cannot read this JSON: {err}") from None


def read_jsonl(data, name):
    """The texts of JSON Lines `data` (bytes) and the numbers of the blank lines skipped.

    Bytes are decoded line by line so that an error can name the line.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{name}:1: starts with a UTF-16 byte order mark; JSON Lines input must be UTF-8")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    texts, blank = [], []
    for line_no, raw in enumerate(lines, start=1):
        # Windows editors start a file with a BOM (and `cat` puts theirs mid-file); it is no text.
        raw = raw.removeprefix(codecs.BOM_UTF8)
        if not raw.strip():
            blank.append(line_no)
            continue
        where = f"{name}:{line_no}"
        texts.append(text_of(parse_json(decode_line(raw, where), where), where))
    return texts, blank


def read_source(path):
    """(bytes, name) of a --jsonl argument: a file, or stdin for "-"."""
    if path == "-":
        stdin = sys.stdin
        # A text stream without a byte buffer (a notebook, a test) is re-encoded; its
        # lone surrogates become bytes that are not UTF-8, reported as such.
        data = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode("utf-8", "surrogatepass")
        return data, "<stdin>"
    if not Path(path).is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    try:
        return Path(path).read_bytes(), path
    except OSError as err:
        raise FileNotFoundError(f"cannot read {path}: {err.strerror}") from None


def argv_problem(text):
    """What is wrong with a command-line text, or None. Python keeps bytes that are not
    UTF-8 as lone surrogates (surrogateescape); os.fsencode gives the bytes back."""
    problem = text_problem(text)
    if problem is None:
        return None
    try:
        raw = os.fsencode(text)
    except UnicodeEncodeError:
        return problem  # a surrogate no byte could have given (main() called with a str list)
    bad = first_bad_byte(raw)
    return problem if bad is None else not_utf8(raw, bad)


def check_argv(texts, args):
    """Raises a DataError naming argv[N] for the first bad text; N counts as in sys.argv."""
    for text in texts:
        problem = argv_problem(text)
        if problem:
            raise DataError(f"argv[{args.index(text) + 1}]: {problem}")
    return texts


def report_blank_lines(line_numbers, name):
    """One stderr line, so that no skipped line goes unnoticed."""
    if line_numbers:
        n = len(line_numbers)
        shown = ", ".join(map(str, line_numbers[:5])) + (", ..." if n > 5 else "")
        print(f"predict: skipped {n} blank line{'s' * (n > 1)} of {name} (line{'s' * (n > 1)} {shown})",
              file=sys.stderr)


def write_results(results):
    """JSON lines in UTF-8 whatever the locale (stdout may be ASCII or Latin-1)."""
    out = getattr(sys.stdout, "buffer", None)
    sys.stdout.flush()  # what was printed before goes first
    for result in results:
        line = json.dumps(result, ensure_ascii=False) + "\n"
        if out is not None:
            out.write(line.encode("utf-8"))
        else:
            sys.stdout.write(line)
    sys.stdout.flush()


def min_score_arg(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


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
    parser.add_argument("--min-score", type=min_score_arg, default=0.0, metavar="P",
                        help="ner: leave out entities whose confidence is below P (0 <= P < 1; default 0)")
    raw_args = list(sys.argv[1:] if argv is None else argv)
    # Intermixed: texts may come after --model without argparse binding them early.
    args = parser.parse_intermixed_args(raw_args)
    if bool(args.texts) == bool(args.jsonl):
        parser.error("give texts on the command line or --jsonl FILE (--jsonl - reads stdin), not both")
    try:
        model_dir = args.model or output_dir(load_params(args.params), args.task) / "saved_model"
        # Every input is checked before TensorFlow loads, so bad input answers at once.
        blank, name = [], None
        if args.jsonl:
            data, name = read_source(args.jsonl)
            texts, blank = read_jsonl(data, name)
        else:
            texts = check_argv(args.texts, raw_args)
        # TensorFlow's C++ chatter stays off stderr; its errors reach us as Python exceptions.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with native_logs_filtered():
            predictor = load_task(args.task).predictor(model_dir)
            predictor.min_score = args.min_score
            results = predictor.predict(texts)
    except (ValueError, FileNotFoundError, DataError, ParamsError) as err:
        print(f"predict: error: {err}", file=sys.stderr)
        return 1
    try:
        write_results(results)
        report_blank_lines(blank, name)  # after the answers: an error stays the only stderr line
    except BrokenPipeError:
        # The reader left (`| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
