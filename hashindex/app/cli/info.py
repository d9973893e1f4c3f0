"""`hashindex info`: an index's manifest, table size and code diagnostics."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("index")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest and diagnostics as JSON.")
@click.option("--verify", is_flag=True,
              help="Also re-hash every file against its recorded sha256 (`hashindex verify`).")
def info(index, as_json, verify):
    """Show an index's manifest and code diagnostics."""
    from hashindex.diagnostics import code_diagnostics, format_diagnostics
    from hashindex.engine import HashIndex

    opened = HashIndex.open(index, verify=verify)
    diagnostics = code_diagnostics(opened.all_codes())
    m = opened.manifest
    if as_json:
        click.echo(json.dumps({"manifest": m.to_dict(), "diagnostics": diagnostics}, indent=2))
        return
    shown = ", ".join(str(s["rows"]) for s in m.shards[:5]) + (", …" if len(m.shards) > 5 else "")
    knobs = ", ".join(f"{k}={v}" for k, v in m.backend_options.items())
    click.echo(f"index                {index}")
    click.echo(f"format version       {m.format_version} (hashindex {m.hashindex_version})")
    click.echo(f"created              {m.created}")
    click.echo(f"embedding model      {m.embedding_model} (dim {m.dimension})")
    if m.embedding:
        e = m.embedding
        calibrated = f", calibrated on {e['calibration']}" if e.get("calibration") else ""
        cut = f", cut at {e['max_tokens']} tokens" if e.get("max_tokens") else ""
        click.echo(f"embedded by          {e.get('backend', 'torch')}, quantize "
                   f"{e.get('quantize', 'none')}{calibrated}{cut}")
    click.echo(f"variant / bits       {m.variant} / {m.bits}")
    click.echo(f"FAISS backend        {m.backend}{f' ({knobs})' if knobs else ''}")
    click.echo(f"shards               {len(m.shards)} ({shown} rows)")
    click.echo(f"stored embeddings    {'yes' if m.store_embeddings else 'no'}")
    click.echo(f"metadata columns     {', '.join(m.metadata_columns) or '(none)'}")
    click.echo(f"hash table           {table_memory(m)}")
    click.echo(format_diagnostics(diagnostics))
    if verify:
        click.echo(f"checksums            every file matches its sha256 ({len(m.files)} files)")


def table_memory(manifest) -> str:
    """The table's size on disk against the raw codes + row ids, substring index apart."""
    from hashindex.store.layout import table_sizes
    from hashindex.store.publish import human_bytes

    sizes = table_sizes(manifest.files, manifest.documents, manifest.bits)
    raw = sizes["raw_codes_and_rows"]
    ratio = f"{sizes['table'] / raw:.2f}× the raw codes + row ids; " if raw else ""
    substrings = sizes["substring_index"]
    index = f"substring index {human_bytes(substrings)}" if substrings else "no substring index"
    return f"{human_bytes(sizes['table'])} ({ratio}{index})"
