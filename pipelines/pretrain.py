"""pretrain stage: a forward and a backward language model on unlabelled text.

Usage: python -m pipelines.pretrain <task> [--params PATH]

With `<task>.pretrain.enabled: false` (the default) it only writes placeholder
outputs, so the DVC graph is the same either way. Enabled (sentiment only), it
trains the two language models on `<task>.pretrain.files` (under
prepare.source) and the train split's text, and the train stage starts the
classifier's embedding and first Bi-RNN from them (pipelines/core/pretraining.py).

Outputs (under the task's out_dir):
    pretrained_encoder.npz   the embedding and the two RNNs' weights (empty when off)
    pretrain.json            corpus size, epochs, seconds, validation perplexity
    pretrain_state/          resume state (a persisted DVC output)
"""

import sys

from pipelines.core.cli import run_stage
from pipelines.tasks import TASK_NAMES, load_task


def run(name, params, out):
    from pipelines.core.pretraining import pretrain, summary_line

    print(summary_line(pretrain(load_task(name), params, out)))


def main(argv=None):
    return run_stage(__doc__, argv, run, TASK_NAMES, requires="vocab.json", previous_stage="prepare")


if __name__ == "__main__":
    sys.exit(main())
