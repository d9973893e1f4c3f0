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
    from hashindex.diagnostics import code_diagnostics, drift, format_diagnostics
    from hashindex.engine import HashIndex
    from hashindex.store.inventory import inventory

    opened = HashIndex.open(index, verify=verify)
    found = inventory(opened.root, opened.manifest.files)
    codes = opened.all_codes()
    diagnostics = code_diagnostics(codes[opened.live_rows()])
    trained, added = opened.rows_by_origin()
    drifted = drift(codes[trained], codes[added])
    m = opened.manifest
    if as_json:
        click.echo(json.dumps({"manifest": m.to_dict(), "diagnostics": diagnostics,
                               "drift": drifted, "other_files": found.foreign,
                               "leftovers": found.leftovers}, indent=2))
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
    click.echo(f"second backend       {m.backend}{f' ({knobs})' if knobs else ''}")
    click.echo(f"generation           {generation_line(m)}")
    click.echo(f"live, deleted        {m.documents} live, {m.rows - m.documents} deleted "
               f"(kept until compact)")
    click.echo(f"segments             {segments_line(m)}")
    click.echo(f"added since training {drift_line(drifted)}")
    click.echo(f"shards               {len(m.shards)} ({shown} rows)")
    click.echo(f"stored embeddings    {'yes' if m.store_embeddings else 'no'}")
    click.echo(f"metadata columns     {', '.join(m.metadata_columns) or '(none)'}")
    click.echo(f"hash table           {table_memory(m)}")
    for line in tuning_lines(opened):
        click.echo(line)
    click.echo(format_diagnostics(diagnostics))
    if verify:
        click.echo(f"checksums            every file matches its sha256 ({len(m.files)} files)")
    for line in inventory_lines(found):
        click.echo(line)


def inventory_lines(found) -> list[str]:
    """What the folder holds besides the index (`info` and `verify` say the same)."""
    lines = []
    if found.leftovers:
        lines.append(f"left by a writer     {', '.join(found.leftovers)} (a writer that died "
                     "named them; the next change removes them)")
    if found.foreign:
        lines.append(f"not the index's       {', '.join(found.foreign)} (left alone: no "
                     "hashindex command reads, changes or removes them)")
    return lines


def tuning_lines(opened) -> list[str]:
    """The recall/speed sweep the build recorded: what a default query runs, and every
    setting measured (the table `--target-recall` chooses from)."""
    tuning = opened.tuning
    if tuning is None:
        return ["tuning               none: hits are ranked by code distance (no stored "
                "vectors)" if opened.vectors is None else
                "tuning               none (an index built before tuning; a rebuild or "
                "`hashindex compact` tunes it)"]
    setting, note = tuning.choose(tuning.target_recall)
    stale = (" — stale: documents added since pass 20% of the index; `hashindex compact` "
             "tunes it again" if tuning.stale(opened.row_count, len(opened)) else "")
    lines = [f"tuning               on {tuning.queries} of its documents, recall@{tuning.k} "
             f"against {tuning.truth}; target {tuning.target_recall:g}: a default query runs "
             f"{setting.describe()}{stale}"]
    if note:
        lines.append(f"                     {note}")
    lines += [f"  {s.describe():<40} recall {s.recall:.3f} {s.qps:>10,.0f} queries/s"
              for s in tuning.settings]
    return lines


def table_memory(manifest) -> str:
    """The table's size on disk against the raw codes + row ids, substring index apart."""
    from hashindex.store.fsutil import human_bytes
    from hashindex.store.layout import table_sizes

    sizes = table_sizes(manifest.files, manifest.rows, manifest.bits)
    raw = sizes["raw_codes_and_rows"]
    ratio = f"{sizes['table'] / raw:.2f}× the raw codes + row ids; " if raw else ""
    substrings = sizes["substring_index"]
    index = f"substring index {human_bytes(substrings)}" if substrings else "no substring index"
    return f"{human_bytes(sizes['table'])} ({ratio}{index})"


def generation_line(manifest) -> str:
    if manifest.legacy:
        return (f"none (format {manifest.format_version}, read-only: `hashindex upgrade` "
                "converts it)")
    last = manifest.history[-1] if manifest.history else None
    return f"{manifest.generation}" + (f" (last change: {last['operation']} at {last['time']})"
                                       if last else " (as built)")


def segments_line(manifest) -> str:
    shown = ", ".join(f"{s.name} {s.rows} rows" + (f" ({s.deleted} deleted)" if s.deleted else "")
                      for s in manifest.segments[:4])
    more = ", …" if len(manifest.segments) > 4 else ""
    return f"{len(manifest.segments)}: {shown}{more}"


def drift_line(drifted: dict) -> str:
    """The share of live documents the encoder never saw, and how their codes' bits balance
    against the trained documents' (mean |p(1) − 0.5| per bit, 0 is balanced)."""
    from hashindex.diagnostics import DRIFT_MIN_ADDED

    line = (f"{drifted['added']} of {drifted['added'] + drifted['trained']} live documents "
            f"({drifted['added_share']:.1%})")
    if drifted["added"] >= DRIFT_MIN_ADDED:
        line += (f"; bit imbalance {drifted['added_imbalance']:.3f} against "
                 f"{drifted['trained_imbalance']:.3f} for the trained ones")
    elif drifted["added"]:
        line += f"; too few to judge their bits' balance (from {DRIFT_MIN_ADDED})"
    if drifted["retrain_hint"]:
        line += "; consider a rebuild, which retrains the encoder"
    return line
