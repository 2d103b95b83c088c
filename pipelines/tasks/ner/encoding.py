"""NER encoding: tokens -> word and character ids, tag names <-> ids, the prepared splits."""

import numpy as np

from pipelines.core.io import load_json
from pipelines.tasks.base import Split
from pipelines.tasks.ner.labels import convert_tags
from pipelines.text.tokenizer import normalize_word
from pipelines.text.vocab import Vocabulary


class TokenEncoder:
    """Word and character ids for token lists, as prepare configured them.

    Args:
        words: Vocabulary of normalised words.
        chars: Vocabulary of characters (case kept).
        lowercase, digits_to_zero: word normalisation used to build `words`.
        max_word_chars: longer tokens keep their first characters only.
    """

    def __init__(self, words, chars, lowercase=True, digits_to_zero=True, max_word_chars=25, vocab=None):
        if int(max_word_chars) < 1:
            raise ValueError(f"max_word_chars must be >= 1, got {max_word_chars}")
        self.words = words
        self.chars = chars
        self.lowercase = bool(lowercase)
        self.digits_to_zero = bool(digits_to_zero)
        self.max_word_chars = int(max_word_chars)
        self.vocab = vocab  # the vocabulary file's contents (tags, scheme, ...)

    @classmethod
    def from_vocab_file(cls, path):
        vocab = load_json(path)
        return cls(
            Vocabulary.from_list(vocab["words"]),
            Vocabulary.from_list(vocab["chars"]),
            lowercase=vocab["lowercase"],
            digits_to_zero=vocab["digits_to_zero"],
            max_word_chars=vocab["max_word_chars"],
            vocab=vocab,
        )

    def normalize(self, token):
        return normalize_word(token, self.lowercase, self.digits_to_zero)

    def word_ids(self, tokens):
        return np.array(self.words.lookup(self.normalize(t) for t in tokens), dtype=np.int32)

    def char_ids(self, tokens):
        width = max(1, min(max((len(t) for t in tokens), default=1), self.max_word_chars))
        out = np.zeros((len(tokens), width), dtype=np.int32)
        stoi, oov = self.chars.stoi, self.chars.oov_id
        for i, token in enumerate(tokens):
            ids = [stoi.get(c, oov) for c in token[: self.max_word_chars]]
            out[i, : len(ids)] = ids
        return out

    def encode(self, sentences):
        """Dict of per-sentence arrays for BucketBatcher: words (T,), chars (T, C)."""
        return {
            "words": [self.word_ids(s) for s in sentences],
            "chars": [self.char_ids(s) for s in sentences],
        }


def encoder(out):
    return TokenEncoder.from_vocab_file(out / "vocab.json")


def load_split(out, split):
    """A Split: tokens, tag ids per sentence (y) and the tag names (extra["tags"])."""
    import datasets

    ds = datasets.load_from_disk(str(out / "data"))[split]
    names = ds.features["tags"].feature.names
    ids = ds["tags"]
    return Split(ds["tokens"], [np.array(row, dtype=np.int32) for row in ids],
                 {"tags": [[names[t] for t in row] for row in ids], "tag_names": names})


def to_iob2(tag_seqs, scheme):
    """Reporting and conlleval use IOB2, whatever scheme the model was trained on."""
    if scheme == "IOB2":
        return [list(t) for t in tag_seqs]
    return [convert_tags(t, scheme, "IOB2") for t in tag_seqs]


def decode_names(id_seqs, tag_names):
    return [[tag_names[i] for i in ids] for ids in id_seqs]


def iob2_names(tag_names):
    """Tag-wise IOBES -> IOB2 names (S- is B-, E- is I-), so served tags are IOB2."""
    out = []
    for tag in tag_names:
        if tag.startswith("S-"):
            tag = "B-" + tag[2:]
        elif tag.startswith("E-"):
            tag = "I-" + tag[2:]
        out.append(tag)
    return out
