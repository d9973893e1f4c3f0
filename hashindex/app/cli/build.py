"""`hashindex build`: flags grouped by concern (input, codes, index, run), turned into one
BuildConfig and a TrainConfig for indexer.build."""

from __future__ import annotations

import click

from hashindex.backends import BACKENDS, FAISS_BACKENDS
from hashindex.embedding.runtimes import (
    AUTO,
    DEFAULT_QUANTIZE,
    DEFAULT_RUNTIME,
    QUANTIZATIONS,
    RUNTIMES,
)
from hashindex.errors import HashIndexError
from hashindex.models import DEFAULT_VARIANT, VARIANTS


def positive(ctx, param, value):
    if value is not None and value < 1:
        raise HashIndexError(f"--{param.name.replace('_', '-')} {value} must be at least 1")
    return value


def apply(*decorators):
    def decorate(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function
    return decorate


input_options = apply(
    click.option("--sample", is_flag=True, help="Index the bundled sample instead of INPUT."),
    click.option("--format", "input_format", default=None,
                 help="Input format: parquet, jsonl, csv, textdir (default: by extension)."),
    click.option("--text-column", default="text", show_default=True),
    click.option("--id-column", default=None,
                 help="Column with document ids (default: `id` if there is one, else the row "
                      "number)."),
    click.option("--embedding-column", default=None,
                 help="Column of precomputed embeddings; the text model is then not used."),
    click.option("--skip-empty", is_flag=True, help="Drop rows with null or empty text."),
)
code_options = apply(
    click.option("--model", default=None, help="sentence-transformers model name or path."),
    click.option("--embed-backend", default=DEFAULT_RUNTIME, show_default=True,
                 help=f"Runtime of the text model: {', '.join(RUNTIMES)} (queries use the "
                      "same)."),
    click.option("--quantize", default=DEFAULT_QUANTIZE, show_default=True,
                 help=f"Text model weights and activations: {', '.join(QUANTIZATIONS)} (int8: "
                      "onnx/openvino, static scales calibrated on a bundled set of texts, "
                      "once per model and machine: ~1.4x faster, its vectors a little off the "
                      f"model's own), or {AUTO}: int8 where the runtime takes it."),
    click.option("--calibrate-on-input", is_flag=True,
                 help="int8: calibrate the scales on this input's first documents instead of "
                      "the bundled set (a new export for every corpus, ~14 s and ~2 GB)."),
    click.option("--device", default="cpu", show_default=True,
                 help="cpu or cuda (cuda: --embed-backend torch)."),
    click.option("--embed-threads", default=0, show_default=True, type=int,
                 help="Threads per embedding worker (0: the cores divided among the workers)."),
    click.option("--embed-workers", default=1, show_default=True, type=int,
                 help="Processes embedding in parallel, each with its own copy of the model "
                      "(--engine ray: embedding actors)."),
    click.option("--max-tokens", default=0, show_default=True, type=int,
                 help="Cut texts at this many tokens (0: the model's own maximum); longer "
                      "texts are counted and reported."),
    click.option("--variant", default=DEFAULT_VARIANT, show_default=True,
                 help=f"Autoencoder backbone: {', '.join(VARIANTS)}."),
    click.option("--bits", default=64, show_default=True, type=int),
    click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
                 help="Set one of the variant's options, e.g. noise=masking, hidden=512,256 "
                      "(list them: hashindex variants --options)."),
    click.option("--epochs", default=None, type=int, callback=positive),
    click.option("--seed", default=None, type=int),
    click.option("--train-option", "train_options", multiple=True, metavar="KEY=VALUE",
                 help="Set one of the training options, e.g. neighbourhood=4 (list them: "
                      "hashindex variants --options)."),
    click.option("--encoder", default=None, help="Reuse a trained encoder folder (no training)."),
)
index_options = apply(
    click.option("--backend", default="auto", show_default=True,
                 help=f"Second backend to build beside the hash table: auto (the exact scan "
                      f"of the stored vectors up to 5 000 documents, the graph above), or one "
                      f"of {', '.join(FAISS_BACKENDS)}."),
    click.option("--backend-option", "backend_options", multiple=True, metavar="KEY=VALUE",
                 help="A knob of --backend, e.g. nlist=1024 or ef_search=128; query knobs set "
                      "here become the index's defaults (list them: hashindex backends)."),
    click.option("--substring-index/--no-substring-index", default=True, show_default=True,
                 help="Keep the multi-index over 16-bit substrings beside the table (built from "
                      "65 536 distinct codes up): fast k-NN at 64+ bits for 3·(bits/16 − 1) more "
                      "bytes per distinct code (4· above 16.7M documents)."),
    click.option("--store-embeddings/--no-store-embeddings", default=True, show_default=True,
                 help="Keep the embeddings (vectors/, int8: 1 byte per dimension) to rank "
                      "hits by cosine; without them hits are ranked by code distance."),
    click.option("--vector-dtype", default="int8", show_default=True,
                 type=click.Choice(["int8", "float16"]),
                 help="How the stored embeddings are kept: int8 with a scale per row (1 byte "
                      "per dimension) or float16 (2)."),
    click.option("--target-recall", default=0.95, show_default=True, type=float,
                 help="The recall@10 queries get by default: the build measures every setting "
                      "of its backends on a sample of its documents and records them; a query "
                      "runs the fastest setting that meets its target."),
    click.option("--shard-rows", default=100_000, show_default=True, type=int, callback=positive),
)
run_options = apply(
    click.option("--engine", default="local", show_default=True,
                 help="local, or ray: the passes on Ray Data (embedding on --embed-workers "
                      "actors; install with pip install 'hashindex[ray]')."),
    click.option("--ray-address", default=None,
                 help="A running Ray cluster to join (default: a local Ray on this machine)."),
    click.option("--cache-dir", default=None, help="Embedding cache folder."),
    click.option("--no-cache", is_flag=True, help="Do not read or write the embedding cache."),
    click.option("--overwrite", is_flag=True, help="Replace an existing index (only an index)."),
    click.option("--quiet", is_flag=True, help="No progress bars."),
)


@click.command()
@click.argument("input_path", metavar="INPUT", required=False)
@click.option("--out", required=True, help="Index directory to write.")
@input_options
@code_options
@index_options
@run_options
def build(input_path, out, **flags):
    """Build an index from INPUT (Parquet, JSONL, CSV or a folder of .txt/.md files)."""
    from indexer.build import build_index

    config, train_config = build_configs(input_path, out, flags)
    print_build_summary(build_index(config, train_config=train_config))


def build_configs(input_path, out, flags):
    """(BuildConfig, TrainConfig) from the command's flags, each group checked."""
    from hashindex.embedding.embedder import DEFAULT_MODEL
    from hashindex.models.config import variant_options
    from hashindex.training import TrainConfig
    from indexer.build import BuildConfig
    from indexer.documents import ColumnOptions
    from indexer.samples import SAMPLE_PATH

    id_column, store_embeddings = flags["id_column"], flags["store_embeddings"]
    if flags["sample"]:
        if input_path:
            raise HashIndexError("pass either INPUT or --sample, not both")
        input_path = str(SAMPLE_PATH)
    if not input_path:
        raise HashIndexError("missing INPUT: pass a file or folder to index, or --sample")
    if flags["model"] and flags["embedding_column"]:
        raise HashIndexError("--model and --embedding-column exclude each other")
    if flags["backend"] not in ("auto", *FAISS_BACKENDS):
        raise HashIndexError(f"unknown backend {flags['backend']!r}; choose auto or one of "
                             f"{', '.join(FAISS_BACKENDS)}")
    if flags["backend"] == "auto" and flags["backend_options"]:
        raise HashIndexError("--backend-option sets a knob of a named backend; name it with "
                             "--backend (auto chooses one by the index's size)")
    if flags["variant"] not in VARIANTS:
        raise HashIndexError(f"unknown variant {flags['variant']!r}; choose one of "
                             f"{', '.join(VARIANTS)}")
    columns = ColumnOptions(flags["text_column"], id_column, flags["embedding_column"],
                            flags["skip_empty"])
    encoder_model = encoder_settings(flags) if flags["encoder"] else None
    if encoder_model is not None:  # the encoder decides what it was trained as
        flags = {**flags, "bits": encoder_model.bits, "variant": encoder_model.variant}
    config = BuildConfig(
        input=input_path, out=out, format=flags["input_format"], columns=columns,
        model=flags["model"] or DEFAULT_MODEL, embed_backend=flags["embed_backend"],
        quantize=flags["quantize"], calibrate_on_input=flags["calibrate_on_input"],
        device=flags["device"],
        embed_threads=flags["embed_threads"], embed_workers=flags["embed_workers"],
        max_tokens=flags["max_tokens"],
        variant=flags["variant"], bits=flags["bits"],
        variant_options=(encoder_model.options if encoder_model is not None
                         else variant_options(flags["variant"], flags["options"])),
        encoder=flags["encoder"], backend=flags["backend"],
        backend_options=(BACKENDS[flags["backend"]].parse(flags["backend_options"])
                         if flags["backend"] != "auto" else {}),
        target_recall=flags["target_recall"],
        substring_index=flags["substring_index"], store_embeddings=store_embeddings,
        vector_dtype=flags["vector_dtype"],
        shard_rows=flags["shard_rows"], overwrite=flags["overwrite"],
        engine=flags["engine"], ray_address=flags["ray_address"],
        cache_dir=flags["cache_dir"], use_cache=not flags["no_cache"],
        show_progress=not flags["quiet"],
    )
    from hashindex.options import parse_pairs

    training = parse_pairs(TrainConfig, list(flags["train_options"]), "--train-option",
                           "training", reserved={"show_progress": "pass --quiet",
                                                 "epochs": "pass --epochs",
                                                 "seed": "pass --seed"})
    training.update({k: flags[k] for k in ("epochs", "seed") if flags[k] is not None})
    return config, TrainConfig(show_progress=not flags["quiet"], **training)


def encoder_settings(flags):
    """--encoder's ModelConfig; --bits, --variant and --option given beside it must agree
    with it (a reused encoder is not retrained: a flag it would ignore is refused)."""
    from click.core import ParameterSource

    from hashindex.model_io import read_model_config
    from hashindex.models.config import ModelConfig
    from hashindex.options import parse_pairs

    encoder = flags["encoder"]
    saved = ModelConfig.from_dict(read_model_config(encoder)["model"])
    context = click.get_current_context()

    def given(name):
        return context.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)

    def refuse(flag, shown, own):
        raise HashIndexError(f"{shown} disagrees with --encoder {encoder}, which was trained "
                             f"with {own}; drop {flag} or train a new encoder (leave out "
                             "--encoder)")

    if given("bits") and flags["bits"] != saved.bits:
        refuse("--bits", f"--bits {flags['bits']}", f"{saved.bits} bits")
    if given("variant") and flags["variant"] != saved.variant:
        refuse("--variant", f"--variant {flags['variant']}", f"variant {saved.variant}")
    asked = parse_pairs(VARIANTS[saved.variant].options, list(flags["options"]), "--option",
                        f"--encoder {encoder}'s variant {saved.variant}")
    own = saved.options.to_dict()
    for key, value in asked.items():
        value = list(value) if isinstance(value, tuple) else value
        if value != own[key]:
            refuse("--option", f"--option {key}={value}", f"{key}={own[key]}")
    return saved


def print_build_summary(report) -> None:
    from hashindex.diagnostics import format_diagnostics

    click.echo(f"\nindex written to {report.out}")
    click.echo(f"input                {report.skipped} empty rows skipped, {report.embedded} "
               "texts embedded by the model (the rest came from the cache or the input)")
    if report.truncated:
        click.echo(f"note: {report.truncated} of the {report.embedded} embedded texts are longer "
                   f"than the model's {report.max_tokens} tokens and were cut there; "
                   "--max-tokens sets another length", err=True)
    click.echo(format_diagnostics(report.diagnostics))
    if report.tuning:
        click.echo(tuning_summary(report.backend, report.tuning))
    else:
        click.echo(f"backend              {report.backend}; no stored vectors: hits are ranked "
                   "by code distance")
    click.echo("stage       seconds    docs/s")
    for stage, seconds in report.stage_seconds.items():
        rate = report.documents / seconds if seconds > 0 else float("inf")
        click.echo(f"{stage:<10} {seconds:8.2f} {rate:9.0f}")


def tuning_summary(backend: str, tuning: dict) -> str:
    """The backend built and what the default query runs, from the recorded sweep."""
    from hashindex.tuning import Tuning

    table = Tuning.from_dict(tuning)
    setting, note = table.choose(table.target_recall)
    line = (f"backend              {backend}; tuned on {table.queries} of its documents: a "
            f"default query runs {setting.describe()} (recall@{table.k} {setting.recall:.3f} "
            f"at {setting.qps:,.0f} queries/s, target {table.target_recall:g})")
    return line + (f"\nnote: {note}" if note else "")
