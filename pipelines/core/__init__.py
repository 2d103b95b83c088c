"""Task-independent machinery the stages share: config, errors, batching, training, evaluating, exporting."""
