"""The sentiment task: a Bi-LSTM document classifier, one label per text (binary or more).

Each hook imports its role module when called, so a stage loads (and DVC
tracks) only the modules of the hooks it uses.
"""

from pipelines.tasks.base import Task, Validation


class SentimentTask(Task):
    name = "sentiment"
    title = "Sentiment"
    monitor = "val_accuracy"
    embedding_dim_key = "embedding_dim"
    history_columns = ("loss", "val_loss", "accuracy", "val_accuracy")
    history_plot = {"loss": "loss", "validation loss": "val_loss", "validation accuracy": "val_accuracy"}

    def prepare(self, cfg, out, seed):
        from pipelines.tasks.sentiment.prepare import prepare

        return prepare(cfg, out, seed)  # the seed carves validation out of train

    def summary_lines(self, stats):
        from pipelines.tasks.sentiment.prepare import summary_lines

        return summary_lines(stats)

    def encoder(self, out):
        from pipelines.tasks.sentiment.encoding import DocumentEncoder

        return DocumentEncoder.from_vocab_file(out / "vocab.json")

    def load_split(self, out, split):
        from pipelines.tasks.sentiment.encoding import load_split

        return load_split(out, split)

    def selection(self, train_cfg):
        metric = train_cfg.get("monitor", self.monitor)
        return metric, "min" if "loss" in metric else "max"

    def build_model(self, model_cfg, vocab):
        from pipelines.tasks.sentiment.model import build_model

        return build_model(model_cfg, vocab)

    def compile_metrics(self, model):
        return [model.accuracy_metric()]

    def validation_monitor(self, encoder, split, cfg, padding_free):
        from pipelines.core.batching import BucketBatcher

        # Keras' own validation pass gives val_loss and val_accuracy.
        return Validation(data=BucketBatcher(encoder.encode(split.tokens), split.y, batch_size=cfg["eval_batch_size"],
                                             exact_lengths=padding_free))

    def load_model(self, path):
        from pipelines.tasks.sentiment.model import load_model

        return load_model(path)

    def evaluate(self, model, encoder, split, cfg, out):
        from pipelines.tasks.sentiment.evaluation import evaluate

        return evaluate(model, encoder, split, cfg, out)

    def evaluation_lines(self, metrics, details):
        from pipelines.tasks.sentiment.evaluation import evaluation_lines

        return evaluation_lines(metrics, details)

    def serving_archive(self, model, vocab):
        from pipelines.tasks.sentiment.serving import build_sentiment_archive

        return build_sentiment_archive(model, vocab)

    def check_parity(self, saved_dir, model, encoder, split, cfg):
        from pipelines.tasks.sentiment.serving import check_parity

        return check_parity(saved_dir, model, encoder, split, cfg)

    def predictor(self, saved_dir):
        from pipelines.tasks.sentiment.serving import SentimentPredictor

        return SentimentPredictor(saved_dir)
