"""Text → float embeddings: the Embedder front (embedder.py: settings, worker pool, spec) over
the one-process TextModel (text_model.py: loading, runtime, tokens, pooling), what an index
records of it (spec.py) and the embedding cache keyed by model and text (cache.py). Both a
build and a text query need them, so they live in the library, below the indexer."""
