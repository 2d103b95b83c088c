"""The command line every stage shares: `python -m pipelines.<stage> <task> [--params PATH]`.

Bad data and bad params come out as one line on stderr,
`<stage>: error: <file>:<line>: <what>`, and exit code 1, as DVC shows them.
"""

import argparse
import contextlib
import os
import re
import sys
import threading

from pipelines.core.config import load_params, output_dir, task_params
from pipelines.core.errors import DataError, ParamsError, StageError

# What a stage reports as one line; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (DataError, ParamsError, StageError, FileNotFoundError)


# A line of C++ logging through absl (TensorFlow, XLA): severity, date, time, thread, file:line].
NATIVE_LOG_LINE = re.compile(rb"^([IWEF])\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] ")
ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
SEVERITIES = b"IWEF"


def _keep_line(line, min_level):
    match = NATIVE_LOG_LINE.match(line)
    return line.rstrip(b"\r") != ABSL_PREAMBLE and not (match and SEVERITIES.index(match[1]) < min_level)


@contextlib.contextmanager
def native_logs_filtered(min_level=None):
    """Passes what is written to file descriptor 2 on as it comes, less the C++ log lines
    below `min_level` (0 info .. 3 fatal; default TF_CPP_MIN_LOG_LEVEL). TensorFlow logs
    through absl before its own logging starts, and those lines ignore TF_CPP_MIN_LOG_LEVEL
    (oneDNN's start-up notes on Intel CPUs), so without this a one-line error is not one line."""
    if min_level is None:
        min_level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL") or 0)
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def write(data):
        while data:
            data = data[os.write(saved, data):]

    def pump():
        pending, filtering = b"", True
        while chunk := os.read(read_end, 65536):
            if not filtering:  # after a failure below: pass everything
                write(chunk)
                continue
            try:
                *lines, pending = (pending + chunk).split(b"\n")
                out = b"".join(line + b"\n" for line in lines if _keep_line(line, min_level))
                # A partial line is held only while it could still become a log line.
                if pending and pending[0] not in SEVERITIES:
                    out, pending = out + pending, b""
                write(out)
            except Exception:  # noqa: BLE001  never block the writers on a full pipe
                filtering = False
                write(pending)
        if pending and _keep_line(pending, min_level):
            write(pending)

    thread = threading.Thread(target=pump, name="native-log-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the pump reads to its end
        thread.join(timeout=10)
        os.close(read_end)
        os.close(saved)


def stage_name(doc):
    return doc.split(" ", 1)[0]


def parse_stage_args(doc, argv, task_names):
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("task", choices=list(task_names))
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repository's)")
    return parser.parse_args(argv)


def run_stage(doc, argv, body, task_names, requires=None, previous_stage=None, errors=()):
    """Parses the arguments, checks the earlier stage's output and runs body(task, params, out).

    `requires` is a file in the task's output folder that `previous_stage`
    writes. Returns the exit code: body's result (0 if None), or 1 after a
    one-line message for an expected error (`errors` adds stage-specific ones).
    """
    stage = stage_name(doc)
    args = parse_stage_args(doc, argv, task_names)
    with native_logs_filtered():
        try:
            params = load_params(args.params)
            task_params(params, args.task)
            out = output_dir(params, args.task)
            if requires and not (out / requires).exists():
                raise StageError(f"{out / requires} not found; run the {previous_stage} stage first")
            code = body(args.task, params, out)
        except EXPECTED_ERRORS + tuple(errors) as err:
            print(f"{stage}: error: {err}", file=sys.stderr)
            return 1
    return 0 if code is None else code
