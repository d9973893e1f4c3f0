"""The hash table: everything that makes the `table` backend, in one package.

- keys.py        packed codes ↔ integer keys whose numeric order is the codes' byte order, and
                 the compiled binary search for a key's run of equal codes
- table.py       HashTable: every document's key, sorted, and the row ids in that order (its
                 on-disk format: table/keys.npy, table/rows.npy); Hamming-ball probes by flips
- substrings.py  SubstringIndex: the multi-index over 16-bit substrings (Norouzi et al. 2012)
                 beside the table (table/substring_*.npy)
- search.py      the compiled k-NN through the substring index, and the compiled full scan
- backend.py     TableBackend: the table behind the search-backend interface (search_backend.py)
"""
