"""The sentiment task: a Bi-LSTM document classifier, one label per text (binary or more).

Each hook imports its role module when called, so a stage loads (and DVC
tracks) only the modules of the hooks it uses.
"""

from pipelines.tasks.base import Task, Validation, hook


class SentimentTask(Task):
    name = "sentiment"
    title = "Sentiment"
    monitor = "val_accuracy"
    embedding_dim_key = "embedding_dim"
    history_columns = ("loss", "val_loss", "accuracy", "val_accuracy")
    history_plot = {"loss": "loss", "validation loss": "val_loss", "validation accuracy": "val_accuracy"}

    prepare = hook("pipelines.tasks.sentiment.prepare", "prepare")  # the seed carves validation out of train
    summary_lines = hook("pipelines.tasks.sentiment.prepare", "summary_lines")
    encoder = hook("pipelines.tasks.sentiment.encoding", "encoder")
    load_split = hook("pipelines.tasks.sentiment.encoding", "load_split")
    pretraining_corpus = hook("pipelines.tasks.sentiment.prepare", "pretraining_corpus")
    build_model = hook("pipelines.tasks.sentiment.model", "build_model")
    load_model = hook("pipelines.tasks.sentiment.model", "load_model")
    finish_model = hook("pipelines.tasks.sentiment.model", "fit_wide_side")
    evaluate = hook("pipelines.tasks.sentiment.evaluation", "evaluate")
    evaluation_lines = hook("pipelines.tasks.sentiment.evaluation", "evaluation_lines")
    serving_archive = hook("pipelines.tasks.sentiment.serving", "build_archive")
    check_parity = hook("pipelines.tasks.sentiment.serving", "check_parity")
    predictor = hook("pipelines.tasks.sentiment.serving", "SentimentPredictor")

    def selection(self, train_cfg):
        metric = train_cfg.get("monitor", self.monitor)
        return metric, "min" if "loss" in metric else "max"

    def compile_metrics(self, model):
        return [model.accuracy_metric()]

    def validation_monitor(self, encoder, split, cfg, padding_free):
        from pipelines.core.batching import BucketBatcher

        # Keras' own validation pass gives val_loss and val_accuracy.
        return Validation(data=BucketBatcher(split.features(encoder), split.y, batch_size=cfg["eval_batch_size"],
                                             exact_lengths=padding_free))
