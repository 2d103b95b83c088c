"""The NER task: a Bi-LSTM(-CRF) tagger, one tag per token, scored at entity level.

Each hook imports its role module when called, so a stage loads (and DVC
tracks) only the modules of the hooks it uses.
"""

from pipelines.tasks.base import Task, Validation


class NerTask(Task):
    name = "ner"
    title = "NER"
    monitor = "val_f1"  # entity-level F1 (seqeval, conlleval mode) on validation
    embedding_dim_key = "word_dim"
    history_columns = ("loss", "val_f1")
    history_plot = {"training loss": "loss", "validation F1": "val_f1"}

    def prepare(self, cfg, out, seed):
        from pipelines.tasks.ner.prepare import prepare

        return prepare(cfg, out)  # nothing random: validation is a file of its own

    def summary_lines(self, stats):
        from pipelines.tasks.ner.prepare import summary_lines

        return summary_lines(stats)

    def encoder(self, out):
        from pipelines.tasks.ner.encoding import TokenEncoder

        return TokenEncoder.from_vocab_file(out / "vocab.json")

    def load_split(self, out, split):
        from pipelines.tasks.ner.encoding import load_split

        return load_split(out, split)

    def check_runtime(self, runtime, model_cfg):
        from pipelines.tasks.ner.model import check_runtime

        check_runtime(runtime, model_cfg)

    def build_model(self, model_cfg, vocab):
        from pipelines.tasks.ner.model import build_model

        return build_model(model_cfg, vocab)

    def validation_monitor(self, encoder, split, cfg, padding_free):
        from pipelines.tasks.ner.model import EntityF1Callback

        vocab = encoder.vocab
        f1 = EntityF1Callback(encoder.encode(split.tokens), split.extra["tags"], vocab["tags"], vocab["tag_scheme"],
                              cfg["eval_batch_size"])
        return Validation(callbacks=[f1])

    def load_model(self, path):
        from pipelines.tasks.ner.model import load_model

        return load_model(path)

    def evaluate(self, model, encoder, split, cfg, out):
        from pipelines.tasks.ner.evaluation import evaluate

        return evaluate(model, encoder, split, cfg, out)

    def evaluation_lines(self, metrics, details):
        from pipelines.tasks.ner.evaluation import evaluation_lines

        return evaluation_lines(metrics, details)

    def serving_archive(self, model, vocab):
        from pipelines.tasks.ner.serving import build_ner_archive

        return build_ner_archive(model, vocab)

    def check_parity(self, saved_dir, model, encoder, split, cfg):
        from pipelines.tasks.ner.serving import check_parity

        return check_parity(saved_dir, model, encoder, split, cfg)

    def predictor(self, saved_dir):
        from pipelines.tasks.ner.serving import NerPredictor

        return NerPredictor(saved_dir)
