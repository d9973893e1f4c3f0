"""`hashindex variants` and `hashindex backends`: what can be chosen by name, from the
registries alone (no torch, no FAISS)."""

from __future__ import annotations

from dataclasses import fields

import click

from hashindex.backends import BACKENDS
from hashindex.models import DEFAULT_VARIANT, VARIANTS
from hashindex.options import describe_option


@click.command()
@click.option("--options", "show_options", is_flag=True,
              help="Also list each variant's options (set with build --option KEY=VALUE).")
def variants(show_options):
    """List every autoencoder backbone, one line each."""
    width = max(len(name) for name in VARIANTS)
    for name, variant in VARIANTS.items():
        marker = " (default)" if name == DEFAULT_VARIANT else ""
        click.echo(f"{name:<{width}}  {variant.description}{marker}")
        if show_options:
            for item in fields(variant.options):
                click.echo(f"{'':<{width}}    {describe_option(item)}")
    if show_options:
        from hashindex.training import TrainConfig  # loads torch: only when asked

        click.echo("\ntraining (every variant; build --train-option KEY=VALUE)")
        for item in fields(TrainConfig):
            if item.name != "show_progress":
                click.echo(f"    {describe_option(item)}")


@click.command()
def backends():
    """List the search backends (exact or approximate) and their options."""
    width = max(len(name) for name in BACKENDS)
    for name, entry in BACKENDS.items():
        kind = "exact" if entry.exact else "approximate"
        click.echo(f"{name:<{width}}  [{kind}] {entry.description}")
        for when, options in (("build", entry.build_options), ("query", entry.search_options)):
            for item in fields(options):
                click.echo(f"{'':<{width}}    {when}: {describe_option(item)}")
