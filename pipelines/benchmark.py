"""Full-data benchmark: prepare, train, evaluate and export with the default params.

Usage: python -m pipelines.benchmark ner|sentiment|all [--repeats N]
NER prints test F1 (seqeval default/conlleval mode and strict IOB2); sentiment
prints test accuracy. Both print training wall time and training throughput
(median tokens/s over epochs after the first). Outputs go to
outputs/benchmark/<task>, apart from the DVC pipeline's.
"""

import argparse
import shutil
import statistics
import sys
import time

from pipelines.config import ROOT, load_params, resolve_path


_TRAINED_VECTORS = set()
REUSE_VECTORS = False


def pretrain_vectors(params, out, task):
    """Runs the word2vec stage into the benchmark folder when the task uses its output."""
    import yaml

    from pipelines import word2vec

    default = resolve_path(params["word2vec"]["out_dir"]) / "vectors.txt"
    wanted = params[task]["train"].get("embeddings_file")
    if not wanted or resolve_path(wanted) != default:
        return None
    bench_vectors = out.parent / "word2vec" / "vectors.txt"
    params[task]["train"]["embeddings_file"] = str(bench_vectors)
    if bench_vectors in _TRAINED_VECTORS or (REUSE_VECTORS and bench_vectors.is_file()):
        return 0.0  # trained earlier (same params and seed give the same vectors)
    params["word2vec"]["out_dir"] = str(bench_vectors.parent)
    tmp_params = out.parent / "params.yaml"
    tmp_params.parent.mkdir(parents=True, exist_ok=True)
    tmp_params.write_text(yaml.safe_dump(params))
    start = time.perf_counter()
    if word2vec.main(["--params", str(tmp_params)]) != 0:
        raise SystemExit("benchmark: the word2vec stage failed")
    _TRAINED_VECTORS.add(bench_vectors)
    return round(time.perf_counter() - start, 1)


def run_ner(params, out):
    from pipelines.evaluate import evaluate_ner
    from pipelines.export import export_ner
    from pipelines.prepare import prepare_ner
    from pipelines.train import train_ner

    if (out / "train_state").exists():
        shutil.rmtree(out / "train_state")  # a benchmark never resumes
    word2vec_seconds = pretrain_vectors(params, out, "ner")
    prepare_ner(params["ner"]["prepare"], out)
    start = time.perf_counter()
    summary = train_ner(params, out)
    train_wall = time.perf_counter() - start
    metrics = evaluate_ner(params, out)
    export = export_ner(params, out)
    return {
        "test_f1": metrics["f1"],
        "test_f1_strict": metrics["strict"]["f1"],
        "test_precision": metrics["precision"],
        "test_recall": metrics["recall"],
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "word2vec_seconds": word2vec_seconds,
        "train_wall_seconds": round(train_wall, 1),
        "train_tokens_per_second": summary["train_tokens_per_second"],
        "export_parity_mismatches": export["mismatches"],
    }


def run_sentiment(params, out):
    from pipelines.prepare import prepare_sentiment
    from pipelines.sentiment import evaluate_sentiment, export_sentiment, train_sentiment

    if (out / "train_state").exists():
        shutil.rmtree(out / "train_state")
    word2vec_seconds = pretrain_vectors(params, out, "sentiment")
    prepare_sentiment(params["sentiment"]["prepare"], out, params["seed"])
    start = time.perf_counter()
    summary = train_sentiment(params, out)
    train_wall = time.perf_counter() - start
    metrics = evaluate_sentiment(params, out)
    export = export_sentiment(params, out)
    return {
        "test_accuracy": metrics["accuracy"],
        "test_macro_f1": metrics["macro_f1"],
        "test_roc_auc": metrics.get("roc_auc"),
        "best_epoch": summary["best_epoch"],
        "epochs_run": summary["epochs_run"],
        "word2vec_seconds": word2vec_seconds,
        "train_wall_seconds": round(train_wall, 1),
        "train_tokens_per_second": summary["train_tokens_per_second"],
        "export_parity_mismatches": export["mismatches"],
    }


RUNNERS = {"ner": run_ner, "sentiment": run_sentiment}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["ner", "sentiment", "all"])
    parser.add_argument("--repeats", type=int, default=1, help="runs with seeds seed, seed+1, ...; medians are reported")
    parser.add_argument("--params", default=None)
    parser.add_argument("--reuse-word2vec", action="store_true",
                        help="keep outputs/benchmark/word2vec/vectors.txt from an earlier benchmark run")
    args = parser.parse_args(argv)
    global REUSE_VECTORS
    REUSE_VECTORS = args.reuse_word2vec
    tasks = list(RUNNERS) if args.task == "all" else [args.task]
    for task in tasks:
        params = load_params(args.params)
        out = ROOT / "outputs" / "benchmark" / task
        params[task]["out_dir"] = str(out)
        runs = []
        base_seed = params["seed"]
        for i in range(args.repeats):
            params["seed"] = base_seed + i
            result = RUNNERS[task](params, out)
            runs.append(result)
            print(f"{task} run {i + 1}/{args.repeats} (seed {params['seed']}): {result}", flush=True)
        print(f"\n== {task} benchmark: {args.repeats} run(s), medians ==")
        for key in runs[0]:
            values = [r[key] for r in runs if r[key] is not None]
            print(f"{key:28s} {statistics.median(values) if values else None}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
