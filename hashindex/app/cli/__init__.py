"""The `hashindex` command: a thin shell over the library and the indexer.

Exit codes, for every command: 0 success; 2 anything the user can act on (bad input, flags,
paths, permissions), printed as one `error:` line; 1 an internal error (a bug), also one line
unless --debug asks for the traceback; 130/143 interrupted by SIGINT/SIGTERM, after cleaning up.

Each command lives in its own module and imports what it needs (torch, FAISS, the text model)
only when it runs, so `hashindex --help` and `hashindex variants` start in a fraction of a second.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback

import click

from hashindex.errors import HashIndexError

USER_ERROR, INTERNAL_ERROR = 2, 1


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every cleanup (staging folders, locks) runs."""


def raise_terminated(signum, frame):
    raise Terminated()


class CLIGroup(click.Group):
    """The one guard at the CLI's edge: every failure becomes one line and its exit code."""

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.UsageError as error:
            usage_error(error)

    def invoke(self, ctx):
        signal.signal(signal.SIGTERM, raise_terminated)
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except click.exceptions.UsageError as error:
            usage_error(error, debug)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except HashIndexError as error:
            fail(str(error), USER_ERROR, debug)
        except BrokenPipeError:  # the reader of our output went away (`| head`): not an error
            sys.stdout = open(os.devnull, "w")
            sys.exit(0)
        except OSError as error:
            from hashindex.store.fsutil import path_error

            fail(str(path_error(error)), USER_ERROR, debug)
        except Terminated:
            fail("terminated (SIGTERM); nothing was published", 143, debug)
        except KeyboardInterrupt:
            fail("interrupted; nothing was published", 130, debug)
        except Exception as error:
            first = (str(error).splitlines() or [""])[0]
            fail(f"internal error: {type(error).__name__}: {first} (a bug in hashindex: "
                 "re-run with --debug for the traceback and report it)", INTERNAL_ERROR, debug)


def usage_error(error: click.exceptions.UsageError, debug: bool = False):
    """A flag or argument click refused (unknown, missing, of the wrong type): one line naming
    it and where the command's help is, exit 2, like every other bad input."""
    if isinstance(error, click.exceptions.NoArgsIsHelpError):
        raise error  # a bare `hashindex` prints its help
    command = error.ctx.command_path if error.ctx is not None else "hashindex"
    fail(f"{error.format_message()} (see `{command} --help`)", USER_ERROR, debug)


def fail(message: str, code: int, debug: bool):
    from hashindex.app.cli.progress import end_progress_lines

    end_progress_lines()
    if debug:
        traceback.print_exc()
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class NoteHandler(logging.Handler):
    """Library notes (e.g. leftovers removed) as `note:` lines on stderr."""

    def emit(self, record):
        click.echo(f"note: {record.getMessage()}", err=True)


@click.group(cls=CLIGroup)
@click.version_option(package_name="hashindex")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
def main(debug):
    """Semantic hashing: binary-code indexes over documents, searched by Hamming ball."""
    logger = logging.getLogger("hashindex")
    if not any(isinstance(h, NoteHandler) for h in logger.handlers):
        logger.addHandler(NoteHandler())
    logger.setLevel(logging.INFO)


def register_commands() -> None:
    from hashindex.app.cli.bench import bench
    from hashindex.app.cli.build import build
    from hashindex.app.cli.catalog import backends, variants
    from hashindex.app.cli.change import add, compact, delete, upgrade
    from hashindex.app.cli.get import get
    from hashindex.app.cli.info import info
    from hashindex.app.cli.query import query
    from hashindex.app.cli.serve import serve
    from hashindex.app.cli.verify import verify

    for command in (build, add, delete, compact, upgrade, query, info, get, verify, variants,
                    backends, bench, serve):
        main.add_command(command)


register_commands()
