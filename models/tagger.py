"""Bi-LSTM sequence tagger (many-to-many) with a softmax or CRF output."""

import keras
from keras import layers, ops

from models.char_encoder import CharEncoder
from models.crf import CRF
from models.document_topic import DocumentTopic
from models.entity_scores import crf_entity_scores, softmax_entity_scores
from models.prediction import PredictOutputsMixin
from models.recurrent import RNN_TYPES, bidirectional
from models.runtime import scale_loss_for_replicas
from models.word_dropout import WordDropout

CHAR_ENCODERS = ("cnn", "lstm", "none")
DOCUMENT_FEATURES = ("topic", "case")


@keras.saving.register_keras_serializable(package="bilstm")
class SequenceTagger(PredictOutputsMixin, keras.Model):
    """Word + character Bi-LSTM tagger; one tag per token.

    Inputs are a dict of right-padded id arrays: `words` (batch, time) with 0
    for padding and `oov_id` for unknown words, and `chars` (batch, time,
    chars) with 0 for padding. The model outputs per-token tag scores
    (logits); `decode` turns them into tag ids (Viterbi with a CRF, argmax
    otherwise) and `predict` returns decoded tag ids.

    Args:
        word_vocab_size: int, number of word ids (padding and OOV included).
        char_vocab_size: int, number of character ids; ignored when
            `char_encoder="none"`.
        num_tags: int, number of tags.
        word_dim: int, word embedding size.
        char_encoder: "cnn", "lstm" or "none".
        char_dim: int, character embedding size.
        char_filters: int, CNN filters.
        char_kernel_size: int, CNN window.
        char_hidden_size: int, character LSTM units per direction.
        rnn_type: "lstm" or "gru".
        hidden_size: int, units per direction of each Bi-RNN layer.
        num_layers: int, number of stacked Bi-RNN layers.
        dropout: float, dropout on the embeddings and between layers.
        word_dropout: float, probability of replacing a word by OOV in training.
        singleton_dropout: float, that probability instead for the ids in
            `singleton_ids` (start, stop): the words seen once in training.
        use_crf: bool, linear-chain CRF output instead of a per-token softmax.
        oov_id: int, id of the unknown word.
        rnn_mask: bool, pass the padding mask to the recurrent layers. A model
            built with False is only correct on batches without padding (see
            `BucketBatcher(exact_lengths=True)`), and in exchange its Bi-RNNs
            can run on cuDNN under JAX and torch, which refuse any mask.
        score_temperature: float > 0 dividing the scores for entity
            confidences only (`entity_scores`); decoding does not change.
        document_vote: float, 0 or in [0.5, 1): after decoding, a mention whose
            name's other mentions in the document vote for another type with
            more than this share takes that type (see
            `document_vote` in pipelines/tasks/ner/model.py; applied by evaluation and the
            SavedModel, not by the network); 0: off.
        document_features: which document context the tokens see, a subset
            of ("topic", "case"): the document's mean word vector through a
            tanh layer (`DocumentTopic`), and how each word's mentions in the
            document are cased. "topic" adds the input `doc_words` (batch,
            length), the document's word ids; "case" adds `case_evidence`
            (batch, time, num_case_classes) float32, what `CaseEvidence`
            computes from the document (outside the model: in training it
            would cost a (time x document length) match per sentence).
        document_topic_dim: int, size of the topic vector.
        num_case_classes: int, number of case classes, padding included.
        members: int, number of taggers trained side by side as an ensemble, each with
            its own weights and its own loss (summed); their tag scores are averaged
            (with a CRF, their transitions too) for decoding and confidences. The model
            then outputs (batch, time, members, tags); `combined_logits` averages them.

    Example:
    >>> tagger = SequenceTagger(word_vocab_size=100, char_vocab_size=40, num_tags=5)
    >>> tag_ids = tagger.predict({"words": words, "chars": chars})
    """

    def __init__(
        self,
        word_vocab_size,
        char_vocab_size,
        num_tags,
        word_dim=100,
        char_encoder="cnn",
        char_dim=30,
        char_filters=50,
        char_kernel_size=3,
        char_hidden_size=25,
        rnn_type="lstm",
        hidden_size=200,
        num_layers=1,
        dropout=0.5,
        word_dropout=0.05,
        singleton_dropout=0.0,
        singleton_ids=(0, 0),
        use_crf=True,
        oov_id=1,
        rnn_mask=True,
        score_temperature=1.0,
        document_vote=0.0,
        document_features=(),
        document_topic_dim=50,
        num_case_classes=7,
        members=1,
        **kwargs,
    ):
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type must be one of {RNN_TYPES}, got {rnn_type!r}")
        if char_encoder not in CHAR_ENCODERS:
            raise ValueError(
                f"char_encoder must be one of {CHAR_ENCODERS}, got {char_encoder!r}"
            )
        if int(num_layers) < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if int(num_tags) < 1:
            raise ValueError(f"num_tags must be >= 1, got {num_tags}")
        document_features = tuple(document_features or ())
        unknown = [f for f in document_features if f not in DOCUMENT_FEATURES]
        if unknown or len(set(document_features)) != len(document_features):
            raise ValueError(f"document_features must be distinct values of {DOCUMENT_FEATURES}, "
                             f"got {list(document_features)}")

        if isinstance(members, bool) or int(members) != members or int(members) < 1:
            raise ValueError(f"members must be an int >= 1, got {members!r}")
        members = int(members)

        words = keras.Input(shape=(None,), dtype="int32", name="words")
        chars = keras.Input(shape=(None, None), dtype="int32", name="chars")
        inputs = {"words": words, "chars": chars}
        if "topic" in document_features:
            inputs["doc_words"] = keras.Input(shape=(None,), dtype="int32", name="doc_words")
        if "case" in document_features:
            inputs["case_evidence"] = keras.Input(
                shape=(None, int(num_case_classes)), dtype="float32", name="case_evidence")
        mask = ops.not_equal(words, 0)

        def member_logits(suffix):
            """One tagger on the inputs: its own embeddings, encoders and weights."""
            dropped = WordDropout(word_dropout, oov_id=oov_id, rare_ids=singleton_ids, rare_rate=singleton_dropout,
                                  name="word_dropout" + suffix)(words)
            embedding = layers.Embedding(word_vocab_size, word_dim, name="word_embedding" + suffix)
            x = embedding(dropped)
            context = []
            if "topic" in document_features:
                doc_words = inputs["doc_words"]
                doc_vectors = ops.stop_gradient(embedding(doc_words))
                context.append(DocumentTopic(document_topic_dim, name="document_topic" + suffix)(
                    words, doc_vectors, doc_words))
            if "case" in document_features:
                context.append(inputs["case_evidence"])
            if char_encoder != "none":
                char_features = CharEncoder(
                    char_vocab_size,
                    embedding_dim=char_dim,
                    encoder=char_encoder,
                    filters=char_filters,
                    kernel_size=char_kernel_size,
                    hidden_size=char_hidden_size,
                    name="char_encoder" + suffix,
                )(chars)
                x = layers.Concatenate(name="token_features" + suffix)([x, char_features])
            if context:
                x = layers.Concatenate(name="context_features" + suffix)([x, *context])
            x = layers.Dropout(dropout, name="embedding_dropout" + suffix)(x)
            for i in range(int(num_layers)):
                x = bidirectional(rnn_type, int(hidden_size), f"bi_{rnn_type}_{i}{suffix}")(
                    x, mask=mask if rnn_mask else None)
                x = layers.Dropout(dropout, name=f"rnn_dropout_{i}{suffix}")(x)
            return layers.Dense(num_tags, dtype="float32", name="tag_logits" + suffix)(x)

        # Member 0 keeps the single model's layer names; the others are independent copies
        # ("_m1", ...) whose tag scores stack on axis 2: (batch, time, members, tags).
        if members == 1:
            logits = member_logits("")
        else:
            logits = ops.stack([member_logits("" if m == 0 else f"_m{m}") for m in range(members)], axis=2)
        if use_crf:
            # float32 even under mixed precision: the forward algorithm sums exponentials.
            logits = CRF(num_tags, members=members, dtype="float32", name="crf")(logits)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        self.word_vocab_size = int(word_vocab_size)
        self.char_vocab_size = int(char_vocab_size)
        self.num_tags = int(num_tags)
        self.word_dim = int(word_dim)
        self.char_encoder = char_encoder
        self.char_dim = int(char_dim)
        self.char_filters = int(char_filters)
        self.char_kernel_size = int(char_kernel_size)
        self.char_hidden_size = int(char_hidden_size)
        self.rnn_type = rnn_type
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        self.word_dropout = float(word_dropout)
        self.singleton_dropout = float(singleton_dropout)
        self.singleton_ids = [int(singleton_ids[0]), int(singleton_ids[1])]
        self.use_crf = bool(use_crf)
        self.oov_id = int(oov_id)
        self.rnn_mask = bool(rnn_mask)
        # Divides the scores before entity confidences are computed; set on validation after training.
        self.score_temperature = float(score_temperature)
        # Chosen on validation after training, like the temperature.
        self.document_vote = float(document_vote)
        self.document_features = list(document_features)
        self.document_topic_dim = int(document_topic_dim)
        self.num_case_classes = int(num_case_classes)
        self.members = members

    @staticmethod
    def token_mask(inputs):
        return ops.not_equal(inputs["words"], 0)

    def combined_logits(self, logits):
        """(batch, time, tags): the members' mean; a single model's logits unchanged."""
        return ops.mean(logits, axis=2) if self.members > 1 else logits

    def decode(self, logits, mask):
        """Tag ids (batch, time), 0 at padding: Viterbi with a CRF, else argmax."""
        logits = self.combined_logits(logits)
        if self.use_crf:
            return self.get_layer("crf").decode(logits, mask)
        tags = ops.cast(ops.argmax(logits, axis=-1), "int32")
        return ops.where(mask, tags, ops.zeros_like(tags))

    def entity_scores(self, logits, mask, tag_ids, span_types, begins, temperature=None):
        """(batch, time) confidence of each entity of the path `tag_ids`, at its first token
        (see models/entity_scores.py): a CRF segment marginal, or a product of softmax
        probabilities. `span_types` and `begins` describe the tags (type index or -1, and
        whether the tag always begins an entity). `temperature`: a scalar (tensor) used
        instead of `score_temperature`."""
        span_types = ops.convert_to_tensor(span_types, "int32")
        begins = ops.convert_to_tensor(begins, "bool")
        tag_ids = ops.cast(tag_ids, "int32")
        t = self.score_temperature if temperature is None else temperature
        logits = self.combined_logits(logits)
        if self.use_crf:
            return crf_entity_scores(self.get_layer("crf"), logits, mask, tag_ids, span_types, begins, t)
        return softmax_entity_scores(logits, mask, tag_ids, span_types, begins, t)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        mask = self.token_mask(x)
        if self.use_crf:
            loss = self.get_layer("crf").loss(y_pred, y, mask)
        else:
            per_token = keras.losses.sparse_categorical_crossentropy(
                ops.broadcast_to(y[:, :, None], ops.shape(y_pred)[:-1]) if self.members > 1 else y,
                y_pred, from_logits=True
            )
            if self.members > 1:
                per_token = ops.sum(per_token, axis=2)
            weights = ops.cast(mask, per_token.dtype)
            loss = ops.sum(per_token * weights) / ops.maximum(ops.sum(weights), 1.0)
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return scale_loss_for_replicas(loss)

    # (span_types, begins) while entity scores are wanted from `predict`; see `scoring_entities`.
    entity_tags = None

    def predict_outputs(self, x, logits):
        """Decoded tag ids: what `predict` and `predict_on_batch` return; with `entity_tags`
        set, (batch, time, 2) float32 of tag ids and entity scores."""
        mask = self.token_mask(x)
        tag_ids = self.decode(logits, mask)
        if self.entity_tags is None:
            return tag_ids
        scores = self.entity_scores(logits, mask, tag_ids, *self.entity_tags)
        return ops.stack([ops.cast(tag_ids, "float32"), scores], axis=-1)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "word_vocab_size": self.word_vocab_size,
            "char_vocab_size": self.char_vocab_size,
            "num_tags": self.num_tags,
            "word_dim": self.word_dim,
            "char_encoder": self.char_encoder,
            "char_dim": self.char_dim,
            "char_filters": self.char_filters,
            "char_kernel_size": self.char_kernel_size,
            "char_hidden_size": self.char_hidden_size,
            "rnn_type": self.rnn_type,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "word_dropout": self.word_dropout,
            "singleton_dropout": self.singleton_dropout,
            "singleton_ids": self.singleton_ids,
            "use_crf": self.use_crf,
            "oov_id": self.oov_id,
            "rnn_mask": self.rnn_mask,
            "score_temperature": self.score_temperature,
            "document_vote": self.document_vote,
            "document_features": self.document_features,
            "document_topic_dim": self.document_topic_dim,
            "num_case_classes": self.num_case_classes,
            "members": self.members,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
