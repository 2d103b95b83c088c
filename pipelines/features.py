"""Turning tokens into the id arrays the tagger reads, from a saved vocabulary."""

import numpy as np

from pipelines.tokenizer import normalize_word
from pipelines.vocab import Vocabulary, load_json


class TokenEncoder:
    """Word and character ids for token lists, as prepare configured them.

    Args:
        words: Vocabulary of normalised words.
        chars: Vocabulary of characters (case kept).
        lowercase, digits_to_zero: word normalisation used to build `words`.
        max_word_chars: longer tokens keep their first characters only.
    """

    def __init__(self, words, chars, lowercase=True, digits_to_zero=True, max_word_chars=25):
        if int(max_word_chars) < 1:
            raise ValueError(f"max_word_chars must be >= 1, got {max_word_chars}")
        self.words = words
        self.chars = chars
        self.lowercase = bool(lowercase)
        self.digits_to_zero = bool(digits_to_zero)
        self.max_word_chars = int(max_word_chars)

    @classmethod
    def from_vocab_file(cls, path):
        vocab = load_json(path)
        return cls(
            Vocabulary.from_list(vocab["words"]),
            Vocabulary.from_list(vocab["chars"]),
            lowercase=vocab["lowercase"],
            digits_to_zero=vocab["digits_to_zero"],
            max_word_chars=vocab["max_word_chars"],
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
