"""The one exception type users see (and its kinds a caller may tell apart): a message naming
the bad value and what is allowed."""

from __future__ import annotations


class HashIndexError(Exception):
    """Bad input or a broken index. The CLI prints the message on one line and exits 2."""


class UnknownDocument(HashIndexError):
    """An id the index does not hold (a `get`, a `like`): the CLI names the index, the
    service answers 404 in words that leave its folder out (`public`)."""

    def __init__(self, doc_id: str, index: str, where: str = ""):
        self.doc_id, self.index, self.where = doc_id, index, where
        self.public = f"{where}no document with id {doc_id!r} in this index"
        super().__init__(f"{where}index {index} has no document with id {doc_id!r}")

    def at(self, where: str) -> UnknownDocument:
        """The same error, its messages prefixed with where it arose (a batch's query)."""
        return UnknownDocument(self.doc_id, self.index, where + self.where)


class UnknownDocuments(HashIndexError):
    """Ids a strict delete refused because the index does not hold them (nothing was
    deleted): the CLI names the index, the service answers 404 naming `ids` in its words."""

    def __init__(self, ids: list[str], index: str):
        self.ids, self.index = list(ids), index
        shown = ", ".join(repr(i) for i in self.ids[:5])
        more = f" and {len(self.ids) - 5} more" if len(self.ids) > 5 else ""
        super().__init__(f"index {index} has no document with id {shown}{more}; nothing was "
                         "deleted (drop --strict to delete the others)")
