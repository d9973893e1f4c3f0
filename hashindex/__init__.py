"""hashindex: semantic hashing retrieval with binary-code autoencoders.

The library: codes.py (bit codes), models/ (variants, their options, the registry),
training.py, encoding.py, model_io.py, embedding/ (text model and cache), store/ (the index
directory format), table/ (the hash table and its search), backends/ (search backends),
engine.py (queries), metrics.py, baselines/. app/ holds the applications (the command line),
the only modules that also use the `indexer` package. README.md, "What is inside", has the map.
"""

__version__ = "0.1.0"
