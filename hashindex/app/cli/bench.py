"""`hashindex bench`: retrieval quality and speed of every method on a labelled dataset."""

from __future__ import annotations

from pathlib import Path

import click

from hashindex.errors import HashIndexError


@click.command()
@click.option("--dataset", required=True,
              help="bbc-news, stdlib-docs, debian-packages, synthetic, or the path of your own "
                   "labelled file or folder (with --label-column).")
@click.option("--label-column", default=None, help="Your file's column of labels.")
@click.option("--text-column", default="text", show_default=True,
              help="Your file's column of texts (not needed with --embedding-column).")
@click.option("--embedding-column", default=None,
              help="Your file's column of precomputed vectors (no text model).")
@click.option("--format", "input_format", default=None,
              help="Your file's format (default: by extension).")
@click.option("--model", default=None, help="sentence-transformers model for the texts.")
@click.option("--methods", default=None,
              help="Comma-separated methods (default: every baseline and ae:<variant>).")
@click.option("--bits", "bits_list", default="16,32,64,128,256", show_default=True,
              help="Comma-separated code lengths.")
@click.option("--seeds", default=3, show_default=True, type=int)
@click.option("--size", default=100_000, show_default=True, type=int,
              help="Documents for the synthetic dataset.")
@click.option("--out", required=True, help="Folder for report.md, CSVs and plots.")
@click.option("--cache-dir", default=None, help="Embedding cache folder.")
@click.option("--jobs", default=1, show_default=True, type=int,
              help="Parallel single-threaded jobs (method × bits × seed runs).")
@click.option("--tuning-split", is_flag=True,
              help="Evaluate on a re-split of the database part only (for choosing defaults "
                   "without touching the query documents).")
@click.option("--quiet", is_flag=True)
def bench(dataset, label_column, text_column, embedding_column, input_format, model, methods,
          bits_list, seeds, size, out, cache_dir, jobs, tuning_split, quiet):
    """Retrieval quality and speed of every method on a labelled dataset."""
    from hashindex.embedding.cache import default_cache_dir
    from indexer.bench.datasets import DATASETS, UserDataset
    from indexer.bench.run import DEFAULT_METHODS, BenchConfig, run_bench

    bits = code_lengths(bits_list)
    if methods is None:
        chosen = list(DEFAULT_METHODS)
    else:
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        if not chosen:
            raise HashIndexError(f"--methods lists no method; name at least one of "
                                 f"{', '.join(DEFAULT_METHODS)}")
    if label_column is not None:
        dataset = UserDataset(dataset, label_column, text_column, embedding_column, input_format)
    elif dataset not in DATASETS:
        raise HashIndexError(f"--dataset {dataset!r} is not one of {', '.join(DATASETS)}; for "
                             "your own file pass its path and --label-column")
    config = BenchConfig(dataset, tuple(chosen), tuple(bits), Path(out),
                         Path(cache_dir) if cache_dir else default_cache_dir() / "bench",
                         seeds=seeds, size=size, model=model, jobs=jobs, tuning=tuning_split,
                         show_progress=not quiet)
    folder = run_bench(config)
    click.echo((folder / "report.md").read_text())


def code_lengths(text: str) -> list[int]:
    """--bits as integers: comma-separated, each once, no empty item (`16,16,` is a typo,
    not a request to run 16 bits twice)."""
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise HashIndexError("--bits lists no code length; pass e.g. --bits 32,64")
    if not all(items):
        raise HashIndexError(f"--bits {text!r} has an empty item; write comma-separated code "
                             "lengths, e.g. --bits 32,64")
    try:
        bits = [int(item) for item in items]
    except ValueError:
        raise HashIndexError(f"--bits {text!r} must be comma-separated integers") from None
    repeated = sorted({b for b in bits if bits.count(b) > 1})
    if repeated:
        raise HashIndexError(f"--bits {text!r} lists {', '.join(map(str, repeated))} more than "
                             "once; name each code length once")
    return bits
