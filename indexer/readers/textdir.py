"""A folder of .txt/.md files: one document per file, id = path relative to the folder."""

import pyarrow as pa

from indexer.readers.base import Reader, decode_utf8

TEXT_SUFFIXES = (".txt", ".md")


class TextDirReader(Reader):
    name = "textdir"
    extensions = ()

    def files(self):
        return sorted(
            p for p in self.path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
        )

    def batches(self, batch_rows):
        ids, texts = [], []
        for file in self.files():
            ids.append(file.relative_to(self.path).as_posix())
            texts.append(decode_utf8(file.read_bytes(), file, 0))
            if len(ids) >= batch_rows:
                yield pa.table({"id": ids, "text": texts})
                ids, texts = [], []
        if ids:
            yield pa.table({"id": ids, "text": texts})
