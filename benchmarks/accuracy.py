"""Accuracy benchmark: prepare, train, evaluate and export a task with the default params.

Usage: python -m benchmarks ner|sentiment|all [--repeats N] [--reuse-word2vec] [--params P] [--out-root DIR]

One runner serves every task (only the public Task API and the stage drivers
of pipelines.core are used). It prints the task's test metrics (metrics.json,
each prefixed `test_`: NER F1 in seqeval's conlleval mode and strict IOB2,
sentiment accuracy, ...), training wall time and training throughput (median
tokens/s over the epochs after the first); with --repeats N the runs use seeds
seed, seed+1, ... and the medians are reported. Outputs go to
<out-root>/<task> (default outputs/benchmark/<task>), apart from the DVC
pipeline's; <out-root>/<task>/benchmark.json holds the runs and medians.
"""

import copy
import functools
import shutil
import statistics
import time
from pathlib import Path

from pipelines.core.config import ROOT, load_params, resolve_path
from pipelines.core.errors import StageError
from pipelines.core.io import load_json, save_json
from pipelines.tasks import TASK_NAMES, load_task

DEFAULT_ROOT = ROOT / "outputs" / "benchmark"


class AccuracyBenchmark:
    """Full runs of tasks into `root`/<task>; the word2vec vectors go to `root`/word2vec.

    The vectors are trained at most once per benchmark object (the first run
    that needs them) and shared by every later run and task; with
    `reuse_word2vec` an existing root/word2vec/vectors.txt is used as it is.
    """

    def __init__(self, root=DEFAULT_ROOT, reuse_word2vec=False, log=print):
        self.root = Path(root)
        self.reuse_word2vec = reuse_word2vec
        self.log = log
        self.trained_vectors = set()

    def vectors(self, params, name):
        """Points the task at the benchmark's word2vec vectors when it uses the word2vec stage's
        output (params is the run's own copy); returns the stage's seconds, 0.0 when reused,
        None when the task does not use them."""
        import yaml

        from pipelines import word2vec

        default = resolve_path(params["word2vec"]["out_dir"]) / "vectors.txt"
        # The files a task reads from the word2vec stage: its embeddings and (NER) its extra words.
        uses = [(section, key) for section, key in ((params[name]["train"], "embeddings_file"),
                                                    (params[name]["prepare"], "embedding_words"))
                if section.get(key) and resolve_path(section[key]) == default]
        if not uses:
            return None
        vectors = self.root / "word2vec" / "vectors.txt"
        for section, key in uses:
            section[key] = str(vectors)
        if vectors in self.trained_vectors or (self.reuse_word2vec and vectors.is_file()):
            return 0.0
        params["word2vec"]["out_dir"] = str(vectors.parent)
        stage_params = self.root / "params.yaml"
        stage_params.parent.mkdir(parents=True, exist_ok=True)
        stage_params.write_text(yaml.safe_dump(params))
        start = time.perf_counter()
        if word2vec.main(["--params", str(stage_params)]) != 0:
            raise StageError("the word2vec stage failed (its error is above)")
        self.trained_vectors.add(vectors)
        return round(time.perf_counter() - start, 1)

    def run_once(self, task, params):
        """prepare -> pretrain -> train -> evaluate -> export of one seed; returns the flat result."""
        # The stage drivers load Keras: imported here so that `--help` stays fast.
        from pipelines.core.evaluating import evaluate
        from pipelines.core.exporting import export
        from pipelines.core.pretraining import pretrain
        from pipelines.core.trainer import train

        out = self.root / task.name
        params[task.name]["out_dir"] = str(out)
        for state in ("train_state", "pretrain_state"):
            if (out / state).exists():
                shutil.rmtree(out / state)  # a benchmark never resumes
        word2vec_seconds = self.vectors(params, task.name)
        task.prepare(params[task.name]["prepare"], out, params["seed"])
        start = time.perf_counter()
        pretrained = pretrain(task, params, out)  # placeholders only, unless <task>.pretrain.enabled
        pretrain_wall = time.perf_counter() - start
        start = time.perf_counter()
        summary, _ = train(task, params, out)
        train_wall = time.perf_counter() - start
        metrics, _ = evaluate(task, params, out)
        try:
            report = export(task, params, out)
        except StageError as err:  # recorded, not fatal: the report is in export.json
            self.log(f"benchmark: warning: {err}")
            report = load_json(out / "export.json")
        measured = {
            "best_epoch": summary["best_epoch"],
            "epochs_run": summary["epochs"],
            "word2vec_seconds": word2vec_seconds,
            "pretrain_wall_seconds": round(pretrain_wall, 1) if pretrained["enabled"] else None,
            "train_wall_seconds": round(train_wall, 1),
            "train_tokens_per_second": summary["tokens_per_s"],
            "export_parity_mismatches": report["mismatches"],
        }
        if "base_acc" in metrics:
            # The model against the linear n-gram baseline fitted in the same run, on the same splits.
            measured["accuracy_minus_baseline"] = round(metrics["accuracy"] - metrics["base_acc"], 5)
        return {**{f"test_{k}": v for k, v in metrics.items()}, **measured}

    def run(self, name, params, repeats=1):
        """`repeats` runs of task `name` with seeds seed, seed+1, ...; returns {runs, medians}.

        `params` is not changed; each run works on its own copy."""
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        task = load_task(name)
        runs = []
        for i in range(repeats):
            run_params = copy.deepcopy(params)
            run_params["seed"] = params["seed"] + i
            result = self.run_once(task, run_params)
            runs.append(result)
            self.log(f"{name} run {i + 1}/{repeats} (seed {run_params['seed']}): {result}")
        summary = {"task": name, "runs": runs, "medians": medians(runs)}
        save_json(summary, self.root / name / "benchmark.json")
        return summary


def medians(runs):
    """Per key (in first-seen order), the median over the runs that have a value; None if none does."""
    keys = list(dict.fromkeys(k for r in runs for k in r))
    out = {}
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = statistics.median(values) if values else None
    return out


def add_arguments(parser):
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs with seeds seed, seed+1, ...; medians are reported (default 1)")
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repository's)")
    parser.add_argument("--out-root", default=None,
                        help="output folder (default outputs/benchmark): <out-root>/<task>, <out-root>/word2vec")
    parser.add_argument("--reuse-word2vec", action="store_true",
                        help="keep <out-root>/word2vec/vectors.txt from an earlier benchmark run")


def check_arguments(parser, args):
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")


def run(args):
    """Runs the benchmark of args.task ('all': every task); returns the exit code."""
    log = functools.partial(print, flush=True)
    bench = AccuracyBenchmark(resolve_path(args.out_root) if args.out_root else DEFAULT_ROOT,
                              reuse_word2vec=args.reuse_word2vec, log=log)
    params = load_params(args.params)
    for name in TASK_NAMES if args.task == "all" else [args.task]:
        summary = bench.run(name, params, args.repeats)
        log(f"\n== {name} benchmark: {args.repeats} run(s), medians ==")
        for key, value in summary["medians"].items():
            log(f"{key:28s} {value}")
    return 0
