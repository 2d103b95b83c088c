"""Reading GloVe / word2vec text files into an embedding matrix for a vocabulary."""

import numpy as np


class VectorsFileError(ValueError):
    """A malformed vectors file; the message names the file and line. The stage CLIs print it as one line."""


def load_vectors(path, vocab, dim, normalize=None, seed=0):
    """Embedding matrix (len(vocab), dim): file vectors where known, small random otherwise.

    Accepts GloVe (`word v1 ... vD`) and word2vec text (`count dim` header first).
    `normalize` maps a file word to the vocabulary's form (lowercasing, digits).
    Returns (matrix, number of vocabulary entries found in the file).
    """
    rng = np.random.default_rng(seed)
    scale = np.sqrt(3.0 / dim)
    matrix = rng.uniform(-scale, scale, (len(vocab), dim)).astype("float32")
    matrix[0] = 0.0  # padding
    found = set()
    with open(path, "rb") as f:
        for line_no, line in enumerate(lines_of(path, f), start=1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if is_header(line_no, parts) or len(parts) < 2:
                continue
            word, values = parts[0], parts[1:]
            if len(values) != dim:
                raise VectorsFileError(
                    f"{path}:{line_no}: vector for {word!r} has {len(values)} values, "
                    f"expected {dim} (the model's word_dim)"
                )
            key = normalize(word) if normalize else word
            idx = vocab.stoi.get(key)
            # The first vector seen for a normalised form wins (files list frequent words first).
            if idx is not None and idx > 1 and idx not in found:
                try:
                    matrix[idx] = np.asarray(values, dtype="float32")
                except ValueError as err:
                    raise VectorsFileError(f"{path}:{line_no}: not a number in the vector for {word!r}") from err
                found.add(idx)
    return matrix, len(found)


def is_header(line_no, parts):
    """Whether a line split on spaces is word2vec's `count dim` header."""
    return line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts)


def vector_words(path, normalize=None):
    """The words of a vectors file (GloVe or word2vec text), normalised, each once, in file
    order (frequent first in word2vec files)."""
    words = {}
    with open(path, "rb") as f:
        for line_no, line in enumerate(lines_of(path, f), start=1):
            parts = line.rstrip("\n").rstrip().split(" ", 2)
            if is_header(line_no, parts) or len(parts) < 2 or not parts[0]:
                continue
            words.setdefault(normalize(parts[0]) if normalize else parts[0], None)
    return list(words)


def lines_of(path, f):
    """Decoded lines of a binary file; text mode decodes in chunks and would blame the wrong line."""
    for line_no, raw in enumerate(f, start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise VectorsFileError(f"{path}:{line_no}: not valid UTF-8 ({err.reason})") from None


class EmbeddingInitializer:
    """callable(model): sets the `word_embedding` layer (and those of the other members of
    an ensemble, `word_embedding_m1`, ...) from a vectors file; returns how many
    vocabulary words the file had. The matrix is read once and reused, so a
    tuning search that builds many models reads the file once.
    """

    def __init__(self, path, encoder, seed, log=print):
        self.path = path
        self.encoder = encoder
        self.seed = seed
        self.log = log
        self._cache = {}

    def __call__(self, model):
        layer = model.get_layer("word_embedding")
        members = [layer] + [other for other in model.layers if other.name.startswith("word_embedding_m")]
        dim = layer.output_dim
        if dim not in self._cache:
            words = self.encoder.words
            self._cache[dim] = load_vectors(self.path, words, dim, normalize=self.encoder.normalize, seed=self.seed)
            self.log(f"embeddings: {self._cache[dim][1]} of {len(words) - 2} words initialised from {self.path}")
        matrix, found = self._cache[dim]
        for member in members:
            member.set_weights([matrix])
        return found
