"""The one exception type users see: a message naming the bad value and what is allowed."""


class HashIndexError(Exception):
    """Bad input or a broken index. The CLI prints the message on one line and exits 2."""
