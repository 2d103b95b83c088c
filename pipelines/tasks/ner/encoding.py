"""NER encoding: tokens -> word and character ids, tag names <-> ids, the prepared splits."""

import numpy as np

from pipelines.core.io import load_json
from pipelines.tasks.base import Split
from pipelines.tasks.ner.labels import convert_tags
from pipelines.text.casing import NUM_CASE_CLASSES, case_classes
from pipelines.text.tokenizer import normalize_word
from pipelines.text.vocab import Vocabulary


class TokenEncoder:
    """Word and character ids for token lists, as prepare configured them.

    Args:
        words: Vocabulary of normalised words.
        chars: Vocabulary of characters (case kept).
        lowercase, digits_to_zero: word normalisation used to build `words`.
        max_word_chars: longer tokens keep their first characters only.
        document_features: the tagger's document context ("topic", "case"): `encode`
            adds `doc_words` (the sentence's document) with "topic" and
            `case_evidence` with "case".
        max_document_tokens: a longer document is cut to this many tokens
            around the sentence.
    """

    def __init__(self, words, chars, lowercase=True, digits_to_zero=True, max_word_chars=25, vocab=None,
                 document_features=(), max_document_tokens=1000):
        if int(max_word_chars) < 1:
            raise ValueError(f"max_word_chars must be >= 1, got {max_word_chars}")
        if int(max_document_tokens) < 1:
            raise ValueError(f"max_document_tokens must be >= 1, got {max_document_tokens}")
        self.words = words
        self.chars = chars
        self.lowercase = bool(lowercase)
        self.digits_to_zero = bool(digits_to_zero)
        self.max_word_chars = int(max_word_chars)
        self.vocab = vocab  # the vocabulary file's contents (tags, scheme, ...)
        self.document_features = tuple(document_features or ())
        self.max_document_tokens = int(max_document_tokens)

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
            document_features=vocab.get("document_features", ()),
            max_document_tokens=vocab.get("max_document_tokens", 1000),
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

    def encode(self, sentences, docs=None, cut_documents=True):
        """Dict of per-sentence arrays for BucketBatcher: words (T,), chars (T, C), and with
        document features: doc_words (L,), the word ids of the sentence's document ("topic"),
        and case_evidence (T, NUM_CASE_CLASSES) float32 ("case", see `case_evidence`).

        `docs`: the document index of each sentence (its sentences in reading order);
        None: each sentence is a whole document of its own. `cut_documents`: False keeps
        whole documents however long, as the SavedModel keeps a served text.
        """
        words = [self.word_ids(s) for s in sentences]
        features = {"words": words, "chars": [self.char_ids(s) for s in sentences]}
        if self.document_features:
            cases = [np.array(case_classes(s), dtype=np.int32) for s in sentences]
            doc_words, doc_case = self.documents(words, cases, docs, cut_documents)
            if "topic" in self.document_features:
                features["doc_words"] = doc_words
            if "case" in self.document_features:
                features["case_evidence"] = [case_evidence(w, d, c, self.words.oov_id)
                                             for w, d, c in zip(words, doc_words, doc_case)]
        return features

    def documents(self, words, cases, docs, cut=True):
        """Per sentence, the word ids and case classes of its document: with `docs`, at most
        max_document_tokens of them, centred on the sentence (all with `cut` False); without,
        the sentence itself."""
        if docs is None:
            return list(words), list(cases)
        members = {}
        for i, doc in enumerate(docs):
            members.setdefault(doc, []).append(i)
        doc_words, doc_case = [None] * len(words), [None] * len(words)
        limit = self.max_document_tokens if cut else None
        for rows in members.values():
            all_words = np.concatenate([words[i] for i in rows])
            all_case = np.concatenate([cases[i] for i in rows])
            offset = 0
            for i in rows:
                start = 0
                if limit is not None and len(all_words) > limit:
                    centre = offset + len(words[i]) // 2
                    start = min(max(0, centre - limit // 2), len(all_words) - limit)
                # Views, not copies: the sentences of a document share its arrays.
                end = None if limit is None else start + limit
                doc_words[i] = all_words[start:end]
                doc_case[i] = all_case[start:end]
                offset += len(words[i])
        return doc_words, doc_case


MAX_MENTIONS = 4095  # models.case_evidence.MAX_MENTIONS (a test checks they agree)


def case_evidence(words, doc_words, doc_case, oov_id):
    """NumPy twin of models.case_evidence.CaseEvidence for one sentence: (T, classes) float32,
    the shares of case classes 1.. among the document's mentions of each word, then
    log(1 + mentions). Unknown words and padding match nothing."""
    classes = NUM_CASE_CLASSES - 1
    known = (doc_words != 0) & (doc_words != oov_id) & (doc_case > 0)
    ids, inverse = np.unique(doc_words[known], return_inverse=True)
    hist = np.zeros((len(ids) + 1, classes), dtype=np.float32)  # the last row: no mention
    np.add.at(hist, (inverse, doc_case[known] - 1), 1.0)
    at = np.searchsorted(ids, words)
    found = at < len(ids)
    found[found] = ids[at[found]] == words[found]
    counts = hist[np.where(found, at, len(ids))]
    total = counts.sum(axis=-1, keepdims=True, dtype=np.float32)
    shares = counts / np.maximum(total, np.float32(1.0))
    # Clamped as models.case_evidence.MAX_MENTIONS; log1p of float32, as its table holds.
    log_total = np.log1p(np.minimum(total, np.float32(MAX_MENTIONS)))
    return np.concatenate([shares, log_total], axis=-1).astype(np.float32)


def encoder(out):
    return TokenEncoder.from_vocab_file(out / "vocab.json")


def load_split(out, split):
    """A Split: tokens, tag ids per sentence (y) and the tag names (extra["tags"])."""
    import datasets

    ds = datasets.load_from_disk(str(out / "data"))[split]
    names = ds.features["tags"].feature.names
    ids = ds["tags"]
    return Split(ds["tokens"], [np.array(row, dtype=np.int32) for row in ids],
                 {"tags": [[names[t] for t in row] for row in ids], "tag_names": names},
                 context={"docs": ds["doc"]})


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
