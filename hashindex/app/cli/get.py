"""`hashindex get`: one document of an index by id, with its metadata."""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("index_path", metavar="INDEX")
@click.argument("doc_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def get(index_path, doc_id, as_json):
    """Print the document ID of INDEX: its text and metadata."""
    from hashindex.app.cli.arguments import utf8_text
    from hashindex.engine import HashIndex

    hit = HashIndex.open(index_path).document(utf8_text(doc_id, "ID"))
    if as_json:
        click.echo(json.dumps({"id": hit.id, "text": hit.text, "metadata": hit.metadata},
                              ensure_ascii=False))
        return
    click.echo(f"id        {hit.id}")
    for name, value in hit.metadata.items():
        click.echo(f"{name:<9} {value}")
    click.echo(hit.text)
