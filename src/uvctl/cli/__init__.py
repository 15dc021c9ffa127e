"""The ``uvctl`` command line: thin click commands over the services.

Nothing here imports SQLAlchemy, sqlglot or httpx at module level; commands import the
services they need inside their bodies, so ``uvctl --help`` stays fast.
"""

from __future__ import annotations

import sys

import click

from ..errors import UvctlError, safe_text


class UvctlGroup(click.Group):
    """A click group that turns errors into one masked line and an exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's main, with its usage errors (bad option values, unknown commands) as one line."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"uvctl: error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"uvctl: error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("uvctl: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except UvctlError as exc:
            if _debug(ctx):
                raise
            click.echo(f"uvctl: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("uvctl: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # the reader went away (uvctl ... | head): stop quietly
            _silence_stdout()
            ctx.exit(141)
        except Exception as exc:  # the last line of defence: never a traceback without --debug
            if _debug(ctx):
                raise
            message = safe_text(str(exc)) or type(exc).__name__
            click.echo(
                f"uvctl: error: unexpected {type(exc).__name__}: {message} (rerun with --debug for details)",
                err=True,
            )
            ctx.exit(1)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit does not fail a second time."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (a test runner's buffer)
        pass


def _debug(ctx) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) if root.params else False


@click.group(cls=UvctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="uvctl", prog_name="uvctl")
def cli(debug):
    """uvctl: own the persistence layer of an Ultravisor deployment.

    Make a database match Ultravisor's schema, keep every queue write and run manifest
    in a local-first journal, and flush it to the assigned backend.

    \b
    State lives in the data dir ($UVCTL_DATA_DIR, else the platform's user data dir).
    The default database is $UVCTL_DB_URL, else a SQLite file in the data dir.
    """


def _register_commands() -> None:
    from . import beacon, coordinator, flush, journal, persistence, plugins, queue, runs, schema  # noqa: F401
    from .. import host

    for module in (schema, plugins, persistence, flush, journal, coordinator, beacon, queue, runs):
        for command in module.COMMANDS:
            cli.add_command(command)
    host.register_commands(cli)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="uvctl")
