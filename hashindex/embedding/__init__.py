"""Text → float embeddings: the sentence-transformers embedder (embedder.py) and the embedding
cache keyed by model and text (cache.py). Both a build and a text query need them, so they live
in the library, below the indexer."""
