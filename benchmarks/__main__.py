"""Benchmarks: accuracy of the whole pipeline per task, and speed against flair.

Usage: python -m benchmarks ner|sentiment|all [--repeats N] [--reuse-word2vec] [--params P] [--out-root DIR]
       python -m benchmarks speed [--epochs N] [--max-sentences N] [--no-flair] [--params P] [--out-root DIR] ...
       python -m benchmarks rawtext [--params P] [--out-dir DIR] [--min-score P]

`python -m benchmarks <command> --help` lists a command's options. Outputs go to
<out-root> (default outputs/benchmark): <task>/ for the accuracy runs, speed/
for the speed benchmark (speed.json, speed.txt). `rawtext` scores the exported NER
SavedModel on the test split as raw text (<ner out_dir>/rawtext.json).
"""

import argparse
import sys

from benchmarks import accuracy, rawtext, speed
from benchmarks.flair_runner import FlairMissing
from pipelines.core.errors import StageError
from pipelines.tasks import TASK_NAMES

# What the benchmark reports as one line (bad params or data, a missing file, flair missing).
EXPECTED_ERRORS = (FlairMissing, FileNotFoundError, ValueError, StageError)


def parser():
    top = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0], epilog=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True, metavar="{" + ",".join([*TASK_NAMES, "all", "speed", "rawtext"]) + "}")
    for name in [*TASK_NAMES, "all"]:
        sub = commands.add_parser(name, help=f"accuracy benchmark of {'every task' if name == 'all' else name}",
                                  description=accuracy.__doc__.splitlines()[0], epilog=accuracy.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        accuracy.add_arguments(sub)
        sub.set_defaults(module=accuracy, task=name, parser=sub)
    sub = commands.add_parser("speed", help="throughput against flair, the SavedModel, IMDB training",
                              description=speed.__doc__.splitlines()[0], epilog=speed.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    speed.add_arguments(sub)
    sub.set_defaults(module=speed, parser=sub)
    sub = commands.add_parser("rawtext", help="NER SavedModel on the test split as raw text",
                              description=rawtext.__doc__.splitlines()[0], epilog=rawtext.__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    rawtext.add_arguments(sub)
    sub.set_defaults(module=rawtext, parser=sub)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    args.module.check_arguments(args.parser, args)
    try:
        return args.module.run(args)
    except EXPECTED_ERRORS as err:
        print(f"benchmark: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
