"""word2vec stage: word vectors from unlabelled local text, for initialising embeddings.

Usage: python -m pipelines.word2vec
Reads the JSON Lines (optionally gzip) files `word2vec.corpus_files` of `corpus_dir`,
tokenises them with the project tokenizer, normalises words as the NER
vocabulary does, trains word2vec (gensim) and writes a word2vec text file.
Reading and training report their progress on stderr (pipelines.core.progress):
a line every ~10 s with an ETA, a bar on a terminal.
"""

import argparse
import functools
import gzip
import json
import sys
import time
import zlib
from pathlib import Path

from pipelines.core.config import load_params, resolve_path
from pipelines.core.errors import ParamsError
from pipelines.core.io import save_json
from pipelines.core.parallel import map_chunks
from pipelines.core.progress import Progress
from pipelines.text.tokenizer import clean_markup, normalize_word, tokenize


def stable_hash(text):
    """Process-independent hash; Python's own is salted per process, which would
    make gensim's initial vectors (and so the result) differ between runs."""
    return zlib.crc32(text.encode("utf-8"))


def open_text(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def count_lines(path):
    """Lines of a (gzip) text file, for the reading progress: a fast pass over the bytes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    n, last = 0, b"\n"
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def tokenize_records(lines, path, field, lowercase, digits_to_zero):
    """(token lists, records without the field) of a chunk of (line number, JSON line) pairs."""
    sentences, skipped = [], 0
    for line_no, line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{line_no}: not valid JSON: {err.msg}") from None
        text = record.get(field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            skipped += 1
            continue
        tokens = tokenize(clean_markup(text))
        if tokens:
            sentences.append([normalize_word(t, lowercase, digits_to_zero) for t in tokens])
    return sentences, skipped


def read_corpus(paths, field, lowercase, digits_to_zero):
    """Token lists, one per record; records without the field are counted, not kept.
    The tokenising runs on every usable CPU (pipelines.core.parallel), in file order."""
    sentences, skipped = [], 0
    total = sum(count_lines(path) for path in paths)
    with Progress("word2vec: reading and tokenising the corpus", total=total, unit="lines") as progress:
        for path in paths:
            with open_text(path) as f:
                lines = list(enumerate(f, start=1))
            chunk_fn = functools.partial(tokenize_records, path=str(path), field=field, lowercase=lowercase,
                                         digits_to_zero=digits_to_zero)
            for chunk_sentences, chunk_skipped in map_chunks(chunk_fn, lines, progress=progress):
                sentences.extend(chunk_sentences)
                skipped += chunk_skipped
    return sentences, skipped


class ReportingCorpus:
    """The token lists as gensim iterates them, pass after pass; every text handed
    out counts `step` on the Progress given to `start`, so the ETA follows gensim's work."""

    def __init__(self, sentences):
        self.sentences = sentences
        self.start(None)

    def start(self, progress, label=None, step=1):
        """Report the next passes to `progress`; `label` ("epoch {n}/5") ends its lines, n the pass."""
        self.progress, self.label, self.step, self.pass_no = progress, label, step, 0

    def __len__(self):
        return len(self.sentences)

    def __iter__(self):
        self.pass_no += 1
        extra = self.label.format(n=self.pass_no) if self.label else None
        for sentence in self.sentences:
            yield sentence
            if self.progress is not None:
                self.progress.update(self.step, extra=extra)


def train_vectors(sentences, cfg, seed):
    """gensim's Word2Vec(sentences, ...) in its two steps, the vocabulary pass then
    the epochs, with one progress over both: the same vectors as the one call.

    The progress starts first and beats while gensim reports nothing (importing,
    sizing the vocabulary), so that a line comes every ~10 s throughout. The
    vocabulary pass (seconds; an epoch takes minutes) counts no texts, its lines
    say "counting words", and the clock restarts after it: the elapsed time and
    the ETA are those of the epochs.
    """
    corpus = ReportingCorpus(sentences)
    total = cfg["epochs"] * len(sentences)
    with Progress("word2vec: training", total=total, unit="texts", heartbeat=True) as progress:
        from gensim.models import Word2Vec

        model = Word2Vec(
            vector_size=cfg["dim"],
            window=cfg["window"],
            min_count=cfg["min_count"],
            sample=cfg.get("sample", 1e-3),  # gensim's default before the param existed
            sg=1 if cfg["skip_gram"] else 0,
            epochs=cfg["epochs"],
            workers=cfg["workers"],
            seed=seed,
            hashfxn=stable_hash,
        )
        corpus.start(progress, "counting words", step=0)
        model.build_vocab(corpus)
        progress.start = progress.clock()
        corpus.start(progress, f"epoch {{n}}/{model.epochs}")
        model.train(
            corpus,
            total_examples=model.corpus_count,
            total_words=model.corpus_total_words,
            epochs=model.epochs,
            start_alpha=model.alpha,
            end_alpha=model.min_alpha,
            compute_loss=model.compute_loss,
        )
    corpus.start(None)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=None)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        if not isinstance(params.get("word2vec"), dict):
            raise ParamsError("params.yaml has no word2vec section")
        cfg = params["word2vec"]
        sample = cfg.get("sample", 1e-3)
        if isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 <= sample < 1:
            raise ParamsError(f"word2vec.sample must be a number in [0, 1) (0: no subsampling), got {sample!r}")
        out = resolve_path(cfg["out_dir"])
        start = time.perf_counter()
        folder = resolve_path(cfg["corpus_dir"])
        if not folder.is_dir():
            raise FileNotFoundError(f"corpus folder not found: {folder}")
        files = [folder / name for name in cfg["corpus_files"]]
        sentences, skipped = read_corpus(files, cfg["text_field"], cfg["lowercase"], cfg["digits_to_zero"])
        if not sentences:
            raise ValueError(f"no text found in field {cfg['text_field']!r} of {', '.join(map(str, files))}")
        read_seconds = time.perf_counter() - start
    except (ValueError, FileNotFoundError, UnicodeDecodeError, OSError) as err:
        print(f"word2vec: error: {err}", file=sys.stderr)
        return 1
    tokens = sum(len(s) for s in sentences)
    print(f"corpus: {len(sentences)} texts, {tokens} tokens ({skipped} records without text skipped)", flush=True)
    start = time.perf_counter()
    model = train_vectors(sentences, cfg, params["seed"])
    train_seconds = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    model.wv.save_word2vec_format(str(out / "vectors.txt"))
    stats = {
        "texts": len(sentences),
        "tokens": tokens,
        "skipped_records": skipped,
        "vocabulary": len(model.wv),
        "read_seconds": round(read_seconds, 1),
        "train_seconds": round(train_seconds, 1),
    }
    save_json(stats, out / "stats.json")
    print(f"{len(model.wv)} vectors of size {cfg['dim']} in {train_seconds:.0f} s -> {out / 'vectors.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
