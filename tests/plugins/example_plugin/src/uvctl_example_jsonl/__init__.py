"""Example third-party uvctl backend ``example_jsonl``: writes appended to a JSON-lines file.

Every write action that succeeds is appended to the file given by ``--path``; reads
replay the file into a :class:`uvctl_memory.MemoryStore`, which implements the contract's
rules (upserts, idempotent events and attempts, soft delete, filters), so the file holds
the full history and any process can read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from uvctl import hookimpl
from uvctl.backend import BackendInfo, BootstrapResult, OptionSpec
from uvctl.errors import UsageError

NAME = "example_jsonl"


def _path(options: dict) -> Path:
    return Path(options["Path"]).expanduser().resolve()


def _validate(options: dict) -> None:
    if not options.get("Path"):
        raise UsageError("example_jsonl needs --path FILE: the JSON-lines file to write to")


def load(path: Path):
    """The file's writes replayed into a fresh :class:`uvctl_memory.MemoryStore`."""
    from uvctl_memory import MemoryStore

    store = MemoryStore()
    if path.exists():
        for line in path.read_text("utf-8").splitlines():
            entry = json.loads(line)
            store.apply(entry["Action"], entry["Settings"])
    return store


@hookimpl
def uvctl_register_backends(register):
    register(
        BackendInfo(
            name=NAME,
            summary="Example third-party backend: every write appended to a JSON-lines file.",
            options=(OptionSpec("Path", "--path", "The JSON-lines file that receives every write.", required=True),),
            identity=lambda options: f"{NAME}:{_path(options)}",
            validate=_validate,
        )
    )


@hookimpl
def uvctl_bootstrap(backend):
    if backend.name != NAME:
        return None
    path = _path(backend.options)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    except OSError as exc:
        return BootstrapResult("error", reason=f"cannot create {path}: {exc.strerror}")
    return BootstrapResult("bootstrapped")


@hookimpl
def uvctl_dispatch(backend, actions):
    if backend.name != NAME:
        return None
    path = _path(backend.options)
    store = load(path)
    results, written = [], []
    for action in actions:
        result = store.apply(action.name, action.settings)
        if action.is_write and result.get("Success"):
            written.append(json.dumps({"Action": action.name, "Settings": action.settings}))
        results.append(result)
    if written:
        with open(path, "a", encoding="utf-8") as out:
            out.write("\n".join(written) + "\n")
            out.flush()
            os.fsync(out.fileno())
    return results
