"""``uvctl plugins``: what the plugin host loaded, with versions, hooks and backends."""

from __future__ import annotations

import click

from .output import emit, json_option


@click.command(name="plugins")
@json_option
def plugins_command(as_json):
    """List installed plugins: version, hooks, backends, and any load error."""
    from .. import host

    infos = host.backends()
    rows = []
    for record in host.plugin_records():
        rows.append(
            {
                "name": record.name,
                "version": record.version,
                "builtin": record.builtin,
                "hooks": host.hooks_of(record.name),
                "backends": [
                    {"name": b, "summary": infos[b].summary, "legacy": infos[b].legacy}
                    for b in record.backends
                    if b in infos
                ],
                "error": record.error,
            }
        )

    def text(data):
        for row in data:
            kind = "built-in" if row["builtin"] else (row["version"] or "?")
            click.echo(f"{row['name']} ({kind})")
            if row["error"]:
                click.echo(f"  load error: {row['error']}")
                continue
            click.echo(f"  hooks: {', '.join(row['hooks']) or '-'}")
            for backend in row["backends"]:
                legacy = " [legacy]" if backend["legacy"] else ""
                click.echo(f"  backend {backend['name']}{legacy}: {backend['summary']}")

    emit(rows, as_json, text)


COMMANDS = [plugins_command]
