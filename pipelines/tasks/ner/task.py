"""The NER task: a Bi-LSTM(-CRF) tagger, one tag per token, scored at entity level.

Each hook imports its role module when called, so a stage loads (and DVC
tracks) only the modules of the hooks it uses.
"""

from pipelines.tasks.base import Task, Validation, hook


class NerTask(Task):
    name = "ner"
    title = "NER"
    monitor = "val_f1"  # entity-level F1 (seqeval, conlleval mode) on validation
    embedding_dim_key = "word_dim"
    history_columns = ("loss", "val_f1")
    history_plot = {"training loss": "loss", "validation F1": "val_f1"}

    prepare = hook("pipelines.tasks.ner.prepare", "prepare")
    summary_lines = hook("pipelines.tasks.ner.prepare", "summary_lines")
    encoder = hook("pipelines.tasks.ner.encoding", "encoder")
    load_split = hook("pipelines.tasks.ner.encoding", "load_split")
    check_runtime = hook("pipelines.tasks.ner.model", "check_runtime")
    build_model = hook("pipelines.tasks.ner.model", "build_model")
    load_model = hook("pipelines.tasks.ner.model", "load_model")
    finish_model = hook("pipelines.tasks.ner.model", "finish_model")
    evaluate = hook("pipelines.tasks.ner.evaluation", "evaluate")
    evaluation_lines = hook("pipelines.tasks.ner.evaluation", "evaluation_lines")
    serving_archive = hook("pipelines.tasks.ner.serving", "build_archive")
    check_parity = hook("pipelines.tasks.ner.serving", "check_parity")
    predictor = hook("pipelines.tasks.ner.serving", "NerPredictor")

    def validation_monitor(self, encoder, split, cfg, padding_free):
        from pipelines.tasks.ner.model import EntityF1Callback, document_vote_setting

        document_vote_setting(cfg)  # a bad value stops here, not after training
        vocab = encoder.vocab
        f1 = EntityF1Callback(split.features(encoder), split.extra["tags"], vocab["tags"], vocab["tag_scheme"],
                              cfg["eval_batch_size"])
        return Validation(callbacks=[f1])
