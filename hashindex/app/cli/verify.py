"""`hashindex verify`: the full checksum pass (every file's sha256 against the manifest),
kept out of every open so that opening an index costs the same at any size."""

from __future__ import annotations

import time

import click


@click.command()
@click.argument("index")
def verify(index):
    """Re-hash every file of INDEX and compare with the checksums its build recorded."""
    from hashindex.app.cli.info import inventory_lines
    from hashindex.engine import HashIndex
    from hashindex.store.fsutil import human_bytes
    from hashindex.store.inventory import inventory

    started = time.perf_counter()
    opened = HashIndex.open(index, verify=True)
    files = opened.manifest.files
    total = sum(entry["bytes"] for entry in files.values())
    click.echo(f"ok: {len(files)} files ({human_bytes(total)}) match their sha256 in "
               f"{time.perf_counter() - started:.2f} s")
    for line in inventory_lines(inventory(opened.root, files)):
        click.echo(line)
