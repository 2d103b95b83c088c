"""flair's side of the speed benchmark: its BiLSTM-CRF trained and timed in a child process.

`run_flair_child(spec, work)` runs `python -m benchmarks.speed flair SPEC RESULT`
(which calls `flair_main`), so that torch's thread pool never competes with
TensorFlow's; nothing here imports TensorFlow. flair is an optional dependency
(requirements-benchmark.txt, `make speed`).
"""

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.speed_report import epoch_throughput

FLAIR_HINT = ("flair is not installed in this environment: run `make speed` (it makes .venv-bench), or "
              "on top of requirements.txt `pip install torch==2.13.0 && pip install -r requirements-benchmark.txt`, "
              "or pass --no-flair to measure our side only")


class FlairMissing(RuntimeError):
    pass


def training_characters(token_lists):
    """Distinct characters of the tokens, most frequent first (ties by code point)."""
    counts = Counter(c for tokens in token_lists for t in tokens for c in t)
    return [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def flair_available():
    return importlib.util.find_spec("flair") is not None


def require_flair():
    try:
        import flair  # noqa: F401
    except ImportError as err:
        raise FlairMissing(f"{FLAIR_HINT} ({err})") from err


def build_char_dictionary(token_lists, path=None):
    """flair Dictionary of the training characters (with <unk>), saved to `path` if given.

    CharacterEmbeddings otherwise downloads flair's "common-chars" dictionary.
    """
    require_flair()
    from flair.data import Dictionary

    dictionary = Dictionary(add_unk=True)
    for char in training_characters(token_lists):
        dictionary.add_item(char)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        dictionary.save(str(path))
    return dictionary


def flair_sentences(token_lists, tag_lists=None, scheme="IOBES", label_type="ner"):
    """flair Sentences of pre-tokenised text; tags (IOB2/IOBES) become span labels."""
    require_flair()
    from flair.data import Sentence

    from pipelines.tasks.ner.labels import get_spans

    out = []
    for i, tokens in enumerate(token_lists):
        sentence = Sentence(list(tokens))
        if len(sentence) != len(tokens):
            raise ValueError(f"flair re-tokenised sentence {i}: {tokens}")
        if tag_lists is not None:
            for entity, start, end in get_spans(tag_lists[i], scheme):
                sentence[start:end].add_label(label_type, entity)
        out.append(sentence)
    return out


def build_flair_tagger(corpus_sentences, char_dict_path, hidden_size, word_dim, scheme, label_type="ner"):
    """BiLSTM-CRF over one-hot word embeddings + character-LSTM embeddings, like ours in size."""
    require_flair()
    from flair.data import Corpus
    from flair.datasets import FlairDatapointDataset
    from flair.embeddings import CharacterEmbeddings, OneHotEmbeddings, StackedEmbeddings
    from flair.models import SequenceTagger

    corpus = Corpus(train=FlairDatapointDataset(corpus_sentences), sample_missing_splits=False)
    # min_freq 1 like ner.prepare.min_word_count; embedding size like ner.model.word_dim.
    words = OneHotEmbeddings.from_corpus(corpus, min_freq=1, embedding_length=word_dim)
    chars = CharacterEmbeddings(path_to_char_dict=str(char_dict_path))
    return SequenceTagger(
        embeddings=StackedEmbeddings([words, chars]),
        tag_dictionary=corpus.make_label_dictionary(label_type, add_unk=False),
        tag_type=label_type,
        tag_format="BIOES" if scheme == "IOBES" else "BIO",
        use_rnn=True, rnn_type="LSTM", rnn_layers=1, hidden_size=hidden_size, bidirectional=True,
        use_crf=True, reproject_embeddings=False,
    )


def flair_train_epochs(tagger, sentences, epochs, batch_size, learning_rate, clipnorm, seed, log=print):
    """flair's ModelTrainer step, one mini-batch at a time, timed per epoch.

    Same as ModelTrainer.train (no AMP, one chunk per batch): zero_grad,
    forward_loss, backward, drop the embeddings stored on the tokens,
    clip_grad_norm_, optimizer.step; SGD as its default optimizer.
    """
    import random

    import torch
    from flair.training_utils import store_embeddings

    rng = random.Random(seed)
    optimizer = torch.optim.SGD(tagger.parameters(), lr=learning_rate)
    order = list(range(len(sentences)))
    seconds, losses = [], []
    for epoch in range(epochs):
        tagger.train()
        rng.shuffle(order)
        total, count = 0.0, 0
        start = time.perf_counter()
        for i in range(0, len(order), batch_size):
            batch = [sentences[j] for j in order[i:i + batch_size]]
            tagger.zero_grad()
            optimizer.zero_grad()
            loss, n = tagger.forward_loss(batch)
            loss.backward()
            store_embeddings(batch, "none")
            torch.nn.utils.clip_grad_norm_(tagger.parameters(), clipnorm)
            optimizer.step()
            total += loss.item()
            count += n
        seconds.append(time.perf_counter() - start)
        losses.append(total / max(count, 1))
        log(f"flair: epoch {epoch + 1}/{epochs}: {seconds[-1]:.2f} s, loss per token {losses[-1]:.4f}")
    return seconds, losses


def run_flair(spec, log=print):
    """The flair half, from a spec dict (see `flair_spec`); returns a JSON-able result."""
    require_flair()
    import logging

    import flair
    import torch

    logging.getLogger("flair").setLevel(logging.WARNING)  # it logs the whole one-hot vocabulary
    flair.device = torch.device("cpu")
    torch.manual_seed(spec["seed"])
    work = Path(spec["work_dir"])
    all_tokens, all_tags = spec["train_tokens"], spec["train_tags"]
    n = spec["max_sentences"] or len(all_tokens)
    scheme = spec["scheme"]

    char_path = work / "flair_chars.pkl"
    build_char_dictionary(all_tokens, char_path)
    corpus_sentences = flair_sentences(all_tokens, all_tags, scheme)
    train = corpus_sentences[:n]
    tagger = build_flair_tagger(corpus_sentences, char_path, spec["hidden_size"], spec["word_dim"], scheme)
    n_tokens = sum(len(s) for s in train)
    log(f"flair: training on {len(train):,} sentences ({n_tokens:,} tokens), torch threads "
        f"{torch.get_num_threads()}, {spec['warmup_epochs']} + {spec['epochs']} epochs")
    seconds, losses = flair_train_epochs(tagger, train, spec["warmup_epochs"] + spec["epochs"], spec["batch_size"],
                                         spec["learning_rate"], spec["clipnorm"], spec["seed"], log=log)
    train_tps = epoch_throughput(n_tokens, seconds, spec["warmup_epochs"])

    tagger.eval()
    test = flair_sentences(spec["test_tokens"])
    batch = spec["inference_batch_size"]
    tagger.predict(test[: batch * 2], mini_batch_size=batch, label_name="predicted")  # warm-up
    infer_seconds = []
    for _ in range(spec["inference_repeats"]):
        start = time.perf_counter()
        tagger.predict(test, mini_batch_size=batch, label_name="predicted")
        infer_seconds.append(time.perf_counter() - start)
    test_n = sum(len(s) for s in test)
    tagged = sum(1 for s in test for _ in s.get_labels("predicted"))
    return {
        "sentences": len(train), "tokens": n_tokens,
        "epoch_seconds": [round(s, 3) for s in seconds], "epoch_losses": [round(x, 4) for x in losses],
        "train_tokens_per_second": round(train_tps),
        "inference_batch_size": batch, "inference_seconds": [round(s, 3) for s in infer_seconds],
        "inference_tokens_per_second": round(test_n / float(np.median(infer_seconds))),
        "predicted_entities": tagged,
        "tag_dictionary_size": len(tagger.label_dictionary),
        "parameters": int(sum(p.numel() for p in tagger.parameters())),
        "optimizer": f"sgd (lr {spec['learning_rate']})", "batch_size": spec["batch_size"],
        "hidden_size": spec["hidden_size"], "torch_threads": torch.get_num_threads(),
        "embeddings": "one-hot words (min_freq 1) + character BiLSTM (25 + 25)", "reproject_embeddings": False,
        "flair_version": flair.__version__, "torch_version": torch.__version__,
    }


def flair_spec(params, train, n_train, test_tokens, scheme, epochs, warmup_epochs, inference_batch, repeats, work):
    """The child's input: the whole train Split for the one-hot and character vocabularies, as
    ours has them, training on its first `n_train` sentences; the sizes of params' NER model."""
    ner = params["ner"]
    return {
        "train_tokens": [list(t) for t in train.tokens], "train_tags": train.extra["tags"], "max_sentences": n_train,
        "test_tokens": [list(t) for t in test_tokens], "scheme": scheme,
        "hidden_size": int(ner["model"]["hidden_size"]), "word_dim": int(ner["model"]["word_dim"]),
        "batch_size": int(ner["train"]["batch_size"]), "clipnorm": float(ner["train"].get("clipnorm") or 5.0),
        "learning_rate": 0.1, "seed": int(params["seed"]), "epochs": epochs, "warmup_epochs": warmup_epochs,
        "inference_batch_size": inference_batch, "inference_repeats": repeats, "work_dir": str(work),
    }


def flair_env(work):
    """Environment of the flair child: offline, its own empty cache, one thread pool per core."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               FLAIR_CACHE_ROOT=str(Path(work) / "flair_cache"))
    return env


def run_flair_child(spec, work, log=print):
    """Runs `run_flair` in a fresh interpreter; returns its result dict."""
    spec_path, result_path = work / "flair_spec.json", work / "flair_result.json"
    spec_path.write_text(json.dumps(spec))
    if result_path.exists():
        result_path.unlink()
    cmd = [sys.executable, "-m", "benchmarks.speed", "flair", str(spec_path), str(result_path)]
    proc = subprocess.run(cmd, env=flair_env(work), cwd=str(Path(__file__).resolve().parents[1]))
    if proc.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"the flair benchmark failed (exit {proc.returncode}); see its output above")
    return json.loads(result_path.read_text())




def flair_main(argv):
    """`python -m benchmarks.speed flair SPEC RESULT`: the child process of run_flair_child."""
    if len(argv) != 2:
        print("usage: python -m benchmarks.speed flair SPEC.json RESULT.json", file=sys.stderr)
        return 2
    try:
        result = run_flair(json.loads(Path(argv[0]).read_text()))
    except FlairMissing as err:
        print(f"speed: error: {err}", file=sys.stderr)
        return 3
    Path(argv[1]).write_text(json.dumps(result, indent=1))
    return 0
