"""Full-data benchmark: prepare, train, evaluate and export with the default params.

Usage: python -m pipelines.benchmark ner|sentiment|all [--repeats N]
       python -m pipelines.benchmark speed [--epochs N] [--max-sentences N] [--no-flair] ...
NER prints test F1 (seqeval default/conlleval mode and strict IOB2); sentiment
prints test accuracy. Both print training wall time and training throughput
(median tokens/s over epochs after the first). Outputs go to
outputs/benchmark/<task>, apart from the DVC pipeline's.

`speed` measures throughput only (pipelines/speed.py): NER training and
inference tokens/s against flair's BiLSTM-CRF (needs requirements-benchmark.txt,
`make speed`), the SavedModel's batched tokens/s and latency, and IMDB training
tokens/s; it writes outputs/benchmark/speed/speed.{json,txt}.
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


def run_speed_command(args):
    from pipelines import speed

    params = load_params(args.params)
    # Random word embeddings: the word2vec stage takes minutes and changes no speed.
    for task in ("ner", "sentiment"):
        params[task]["train"]["embeddings_file"] = None
    out = ROOT / "outputs" / "benchmark" / "speed"
    params["ner"]["out_dir"] = str(out / "ner")
    params["sentiment"]["out_dir"] = str(out / "sentiment")
    try:
        _, table = speed.run_speed(
            params, out, epochs=args.epochs, warmup_epochs=args.warmup_epochs,
            max_sentences=args.max_sentences or None, with_flair=not args.no_flair,
            inference_batch=args.inference_batch, serving_batch_sizes=args.serving_batch_sizes,
            latency_sentences=args.latency_sentences, repeats=args.repeats,
            imdb_documents=args.imdb_documents or None, with_imdb=not args.no_imdb,
        )
    except speed.FlairMissing as err:
        print(f"benchmark: error: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        print(f"benchmark: error: {err}", file=sys.stderr)
        return 1
    print(f"\n== speed benchmark (outputs/benchmark/speed/speed.json) ==\n{table}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=["ner", "sentiment", "all", "speed"])
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs with seeds seed, seed+1, ...; medians are reported (default 1); "
                             "speed: timed passes of each inference measurement (default 3)")
    parser.add_argument("--params", default=None)
    parser.add_argument("--reuse-word2vec", action="store_true",
                        help="keep outputs/benchmark/word2vec/vectors.txt from an earlier benchmark run")
    speed_args = parser.add_argument_group("speed")
    speed_args.add_argument("--epochs", type=int, default=3, help="measured training epochs after the warm-up")
    speed_args.add_argument("--warmup-epochs", type=int, default=1, help="training epochs left out of the median")
    speed_args.add_argument("--max-sentences", type=int, default=0,
                            help="train both on the first N CoNLL training sentences (default 0: all 14,041)")
    speed_args.add_argument("--imdb-documents", type=int, default=5000,
                            help="IMDB training documents, a seeded sample (0: all)")
    speed_args.add_argument("--inference-batch", type=int, default=256, help="batch size of in-memory inference")
    speed_args.add_argument("--serving-batch-sizes", type=int, nargs="+", default=[256, 1024],
                            help="SavedModel batch sizes (sentences in input order; the first also length-sorted)")
    speed_args.add_argument("--latency-sentences", type=int, default=200, help="single-sentence calls timed")
    speed_args.add_argument("--no-flair", action="store_true", help="measure our side only")
    speed_args.add_argument("--no-imdb", action="store_true", help="skip the IMDB training measurement")
    args = parser.parse_args(argv)
    if args.task == "speed":
        args.repeats = 3 if args.repeats is None else args.repeats
        if args.repeats < 1 or args.epochs < 1 or args.warmup_epochs < 0 or args.inference_batch < 1 \
                or args.latency_sentences < 1 or min(args.serving_batch_sizes) < 1 \
                or args.max_sentences < 0 or args.imdb_documents < 0:
            parser.error("speed: --repeats, --epochs, batch sizes and --latency-sentences must be >= 1; "
                         "--warmup-epochs, --max-sentences and --imdb-documents >= 0")
        return run_speed_command(args)
    args.repeats = 1 if args.repeats is None else args.repeats
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
