"""The index directory format: its layout (layout.py), the manifest (manifest.py), the Parquet
shards (shards.py) and atomic publication (publish.py). The hash table has its own package,
hashindex/table."""
