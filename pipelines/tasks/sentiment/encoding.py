"""Sentiment encoding: raw text -> tokens (markup removed, truncated) -> word ids, and the
n-gram ids of the wide side (of the whole document or of the kept tokens)."""

import numpy as np

from pipelines.core.io import load_json
from pipelines.tasks.base import Split
from pipelines.text.ngrams import NgramIndex
from pipelines.text.tokenizer import clean_markup, normalize_word, tokenize
from pipelines.text.vocab import Vocabulary

TRUNCATE_POLICIES = ("head", "tail", "head_tail")


def truncate_tokens(tokens, max_tokens, policy):
    """The part of a long document that is kept; documents of at most
    ``max_tokens`` tokens are returned unchanged (as a new list).

    head:      tokens[:max_tokens]
    tail:      tokens[-max_tokens:]
    head_tail: tokens[:h] + tokens[n - (max_tokens - h):] with h = max_tokens // 2
               (the tail gets the extra token when max_tokens is odd).
    """
    if policy not in TRUNCATE_POLICIES:
        raise ValueError(f"truncate policy must be one of {', '.join(TRUNCATE_POLICIES)}, got {policy!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    tokens = list(tokens)
    n = len(tokens)
    if n <= max_tokens:
        return tokens
    if policy == "head":
        return tokens[:max_tokens]
    if policy == "tail":
        return tokens[n - max_tokens :]
    h = max_tokens // 2
    return tokens[:h] + tokens[n - (max_tokens - h) :]


def cut_tokens(tokens, max_tokens, policy):
    """The tokens that truncate_tokens leaves out, in document order ([] when nothing is cut)."""
    tokens = list(tokens)
    n = len(tokens)
    if n <= max_tokens:
        return []
    if policy == "head":
        return tokens[max_tokens:]
    if policy == "tail":
        return tokens[: n - max_tokens]
    h = max_tokens // 2
    return tokens[h : n - (max_tokens - h)]


def restore_tokens(kept, cut, max_tokens, policy):
    """The whole document from its truncate_tokens and cut_tokens parts."""
    kept, cut = list(kept), list(cut)
    if not cut:
        return kept
    if policy == "head":
        return kept + cut
    if policy == "tail":
        return cut + kept
    h = max_tokens // 2
    return kept[:h] + cut + kept[h:]


def tokenize_document(text):
    """Markup removed, then the project tokenizer."""
    return tokenize(clean_markup(text))


class DocumentEncoder:
    """Word ids for documents, with the normalisation and length policy of prepare."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.words = Vocabulary.from_list(vocab["words"])
        self.lowercase = bool(vocab["lowercase"])
        self.digits_to_zero = bool(vocab["digits_to_zero"])
        self.max_tokens = int(vocab["max_tokens"])
        self.truncate = vocab["truncate"]
        self.labels = list(vocab["labels"])
        # The n-grams of the wide side (prepare's ngram_max_n > 0), or None.
        self.ngrams = NgramIndex(vocab["ngrams"], vocab["ngram_max_n"]) if vocab.get("ngrams") else None
        # "full": n-grams of the whole document, also where truncation cuts it for the recurrent
        # side; "kept": of the kept tokens only (vocabularies written before the option).
        self.ngram_text = vocab.get("ngram_text", "kept")

    @classmethod
    def from_vocab_file(cls, path):
        return cls(load_json(path))

    def normalize(self, token):
        return normalize_word(token, self.lowercase, self.digits_to_zero)

    def tokens(self, text):
        """Raw text -> the tokens the model sees (cleaned, tokenised, truncated)."""
        return truncate_tokens(tokenize_document(text), self.max_tokens, self.truncate)

    def parts(self, text):
        """Raw text -> (the tokens the recurrent side sees, the tokens truncation cut)."""
        tokens = tokenize_document(text)
        return truncate_tokens(tokens, self.max_tokens, self.truncate), cut_tokens(tokens, self.max_tokens, self.truncate)

    def word_ids(self, tokens):
        return self._word_ids([self.normalize(t) for t in tokens])

    def ngram_ids(self, tokens, cut=()):
        return self._ngram_ids(self._ngram_source([self.normalize(t) for t in tokens], cut))

    def _ngram_source(self, normed, cut):
        if self.ngram_text == "full" and cut:
            return restore_tokens(normed, [self.normalize(t) for t in cut], self.max_tokens, self.truncate)
        return normed

    def _word_ids(self, normed):
        # An empty document is one unknown word, so no row is made only of padding.
        return np.array(self.words.lookup(normed) or [self.words.oov_id], dtype=np.int32)

    def _ngram_ids(self, normed):
        # At least one (padding) id per document, so no batch has a zero-width n-gram input.
        return np.array(self.ngrams.document_ids(normed) or [0], dtype=np.int32)

    def encode(self, token_lists, cut_tokens=None):
        """Model inputs of documents: their kept tokens and, for the wide side's n-grams of
        the whole document, the tokens truncation cut from each (cut_tokens, [] if none)."""
        features = {"words": []}
        if self.ngrams is not None:
            features["ngrams"] = []
        for i, tokens in enumerate(token_lists):
            normed = [self.normalize(t) for t in tokens]  # once for both features
            features["words"].append(self._word_ids(normed))
            if self.ngrams is not None:
                cut = cut_tokens[i] if cut_tokens is not None else ()
                features["ngrams"].append(self._ngram_ids(self._ngram_source(normed, cut)))
        return features


def encoder(out):
    return DocumentEncoder.from_vocab_file(out / "vocab.json")


def load_split(out, split):
    """A Split: tokens, label ids (y), the ids and raw texts of the documents (extra) and the
    tokens truncation cut (context, for the n-grams of the whole document)."""
    import datasets

    ds = datasets.load_from_disk(str(out / "data"))[split]
    context = {"cut_tokens": ds["cut_tokens"]} if "cut_tokens" in ds.column_names else {}
    return Split(ds["tokens"], np.asarray(ds["label"], dtype=np.int32), {"ids": ds["id"], "texts": ds["text"]},
                 context)
