"""Tiny fixtures written for the tests: CoNLL files and params for fast runs."""

import random
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

PEOPLE = ["John Smith", "Maria Garcia", "Peter Blackburn", "Anna Weber", "Li Wei"]
PLACES = ["Paris", "New York", "Berlin", "Tokyo", "Cape Town"]
ORGS = ["European Commission", "Reuters", "United Nations", "Acme Corp"]
TEMPLATES = [
    "{PER} visited {LOC} on Monday .",
    "{ORG} said {PER} would leave {LOC} .",
    "The {ORG} opened an office in {LOC} .",
    "{PER} met {PER} at the {ORG} .",
    "Shares in {ORG} rose 3.5 percent in {LOC} .",
    "It rained all day .",
]


def make_sentences(n, seed):
    """(tokens, IOB2 tags) pairs from templates; deterministic for a seed."""
    rng = random.Random(seed)
    names = {"PER": PEOPLE, "LOC": PLACES, "ORG": ORGS}
    out = []
    for _ in range(n):
        tokens, tags = [], []
        for piece in rng.choice(TEMPLATES).split():
            if piece.startswith("{"):
                kind = piece.strip("{}")
                words = rng.choice(names[kind]).split()
                tokens += words
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
            else:
                tokens.append(piece)
                tags.append("O")
        out.append((tokens, tags))
    return out


def write_conll(path, sentences, columns=4, docstart=True):
    """Writes sentences in CoNLL-2003 layout (word POS chunk NER) or `word tag`."""
    lines = ["-DOCSTART- -X- -X- O", ""] if docstart and columns == 4 else []
    for tokens, tags in sentences:
        for tok, tag in zip(tokens, tags):
            lines.append(f"{tok} NN I-NP {tag}" if columns == 4 else f"{tok}\t{tag}")
        lines.append("")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


POSITIVE = ["a wonderful film", "great acting and a moving story", "I loved every minute",
            "superb direction", "the best movie this year"]
NEGATIVE = ["a dull mess", "terrible acting and a boring plot", "I hated every minute",
            "awful direction", "the worst movie this year"]


def make_reviews(n, seed, labels=(0, 1)):
    """JSON-able review records whose words give the label away; deterministic."""
    rng = random.Random(seed)
    pools = {0: NEGATIVE, 1: POSITIVE, 2: ["it was fine", "an average film", "neither good nor bad"]}
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        text = " . ".join(rng.sample(pools[label], 2)) + ".<br /><br />Seen in 2024 ."
        rows.append({"id": f"r{seed}-{i}", "text": text, "label": label})
    return rows


def write_reviews(folder, train=40, test=16, labels=(0, 1)):
    import json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train.jsonl", train, 1), ("test.jsonl", test, 2)):
        rows = make_reviews(n, seed, labels)
        (folder / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return folder


def write_conll_splits(folder, train=40, valid=12, test=12):
    """train.txt, valid.txt and test.txt of template sentences in a new folder; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    for name, n, seed in (("train.txt", train, 1), ("valid.txt", valid, 2), ("test.txt", test, 3)):
        write_conll(folder / name, make_sentences(n, seed=seed))
    return folder


@pytest.fixture
def conll_dir(tmp_path):
    return write_conll_splits(tmp_path / "conll")


def tiny_params(tmp_path, source, **overrides):
    """The repository's params.yaml with a tiny model, few epochs and outputs in tmp_path."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    ner = params["ner"]
    ner["out_dir"] = str(tmp_path / "out" / "ner")
    ner["prepare"]["source"] = str(source)
    ner["prepare"]["embedding_words"] = None
    ner["model"].update(word_dim=16, char_dim=8, char_filters=8, char_hidden_size=8, hidden_size=16)
    ner["train"].update(epochs=2, batch_size=8, patience=2, min_steps=None, ema_momentum=None, embeddings_file=None)
    # A tiny unlabelled corpus for the word2vec stage (run by the dvc test).
    (Path(tmp_path) / "corpus").mkdir(exist_ok=True)
    corpus = Path(tmp_path) / "corpus" / "corpus.jsonl"
    corpus.write_text("\n".join(
        '{"text": "%s"}' % " ".join(tokens) for tokens, _ in make_sentences(60, seed=9)) + "\n")
    params["word2vec"].update(
        out_dir=str(Path(tmp_path) / "out" / "word2vec"), corpus_dir=str(corpus.parent),
        corpus_files=[corpus.name], dim=16, epochs=1, min_count=1
    )
    sentiment = params["sentiment"]
    sentiment["out_dir"] = str(tmp_path / "out" / "sentiment")
    sentiment["prepare"].update(
        source=str(write_reviews(Path(tmp_path) / "reviews")),
        files={"train": "train.jsonl", "validation": None, "test": "test.jsonl"},
        validation_size=0.25, min_word_count=1, max_vocab=None, max_tokens=12,
    )
    sentiment["model"].update(embedding_dim=16, hidden_size=8, attention_units=8)
    sentiment["train"].update(epochs=2, batch_size=8, patience=2, min_steps=None, embeddings_file=None)
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path
