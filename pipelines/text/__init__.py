"""Text handling shared by the tasks and the SavedModels: tokenizers, casing, embeddings files, n-grams."""
