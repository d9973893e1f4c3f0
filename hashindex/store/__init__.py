"""The index directory format: manifest, hash table, shards (the library's storage layer)."""
