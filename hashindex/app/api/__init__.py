"""The Python front door, re-exported by `import hashindex`: build or open an index from what
a user holds (index.py, sources.py), results as lists, pandas or Arrow (results.py), and the
same search over HTTP (client.py)."""
