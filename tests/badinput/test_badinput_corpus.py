"""Every file of the bad-input corpus, through the CLI: one clear line on stderr, a non-zero
exit, no traceback, no secret echoed, and nothing changed in the data dir or the target."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from .conftest import CORPUS, fingerprint

SECRETS = ("S3cr3tPw", "HandEditedPw", "Pw0rd!", "MeshPw", "Hunter2SECRET")
EXAMPLE_DATADIR = Path(__file__).resolve().parents[2] / "examples" / "ultravisor-datadir"


def _cases():
    for path in sorted(CORPUS.rglob("*")):
        if path.is_file():
            yield pytest.param(path, id=str(path.relative_to(CORPUS)))


def assert_clean_error(result, multiline_ok: bool = False) -> None:
    """Non-zero exit; stderr is one ``uvctl: error:`` line (a descriptor may list its problems
    on indented lines after it); no traceback; no secret anywhere."""
    out = (result.stdout or "") + (result.stderr or "")
    lines = [line for line in (result.stderr or "").splitlines() if line.strip()]
    assert result.exit_code != 0, out
    assert lines and lines[0].startswith("uvctl: error: "), out
    assert not lines[0].startswith("uvctl: error: unexpected "), out
    assert len(lines) == 1 or (multiline_ok and all(line.startswith("  ") for line in lines[1:])), out
    assert "Traceback" not in out
    assert not any(secret in out for secret in SECRETS), out


def _commands(path, prepared, tmp_path):
    """The uvctl invocations that take this corpus file, after putting it where it belongs."""
    kind = path.parent.name
    if kind == "descriptors":
        return [["schema", "ensure", "--schema", str(path), "--db", prepared["url"]],
                ["schema", "ddl", "--dialect", "postgres", "--schema", str(path)]]
    if kind == "urls":
        url = path.read_text()
        return [["schema", "ensure", "--db", url], ["persistence", "assign", "--backend", "sql", "--db", url]]
    if kind == "assignment":
        (prepared["data"] / "persistence-assignment.json").write_bytes(path.read_bytes())
        return [["flush"]]
    if kind == "hwm":
        text = path.read_text().replace("IDENTITY", prepared["identity"])
        (prepared["data"] / "persistence-bridge-hwm.json").write_text(text)
        return [["flush"], ["flush", "--dry-run"], ["persistence", "status", "--no-bootstrap"], ["journal", "prune"],
                ["journal", "prune", "--dry-run"]]
    if kind == "journal":  # an SQL script: the database it makes is put at journal.sqlite
        journal = prepared["data"] / "journal.sqlite"
        for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
            (prepared["data"] / name).unlink(missing_ok=True)
        conn = sqlite3.connect(journal)
        conn.executescript(path.read_text())
        conn.close()
        source = tmp_path / "good.jsonl"
        source.write_text(json.dumps({"Action": "QP_UpsertWorkItem", "Settings": {"WorkItem": {"WorkItemHash": "x"}}}))
        return [["journal", "stats"], ["journal", "import", str(source)], ["flush"], ["persistence", "status"],
                ["journal", "prune"]]
    if kind == "jsonl":
        source = path
        if path.suffix == ".gz":
            source = tmp_path / path.stem
            source.write_bytes(gzip.decompress(path.read_bytes()))
        return [["journal", "import", str(source)]]
    if kind == "options":
        return [["persistence", "assign", "--backend", "meadowproxy", *json.loads(path.read_text())]]
    if kind == "views":  # uvctl queue / runs: bad options (exit 2), an unknown hash (exit 1)
        return [json.loads(path.read_text())]
    if kind == "commands":
        return _staged_commands(json.loads(path.read_text()), prepared, tmp_path)
    raise AssertionError(f"corpus folder {kind} has no command")


def _staged_commands(case: dict, prepared, tmp_path) -> list:
    """A ``commands/*.json`` case: ``{"commands": [[arg, ...]], "datadir": true, "symlink": {link: target},
    "mkfifo": [path], "write": {file: text}, "chmod": {path: "0777"}, "chown": {path: "nobody"}}``, set up in
    this order.
    In every string ``{DATA}`` is the data dir, ``{TMP}`` a scratch folder, ``{EXAMPLE}`` a copy of the
    example Ultravisor data dir (with ``"datadir": true``; ``{EXAMPLE_SOURCE}`` the original), ``{URL}`` the sql
    target, ``{LONG}`` a 300-character name."""
    import pwd

    values = {"DATA": str(prepared["data"]), "TMP": str(tmp_path), "EXAMPLE": str(tmp_path / "example"),
              "EXAMPLE_SOURCE": str(EXAMPLE_DATADIR), "URL": prepared["url"], "LONG": "n" * 300}

    def fill(text: str) -> str:
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return text

    if case.get("datadir"):
        shutil.copytree(EXAMPLE_DATADIR, tmp_path / "example")
    for fifo in case.get("mkfifo", []):
        os.mkfifo(fill(fifo))
    for link, target in case.get("symlink", {}).items():
        Path(fill(link)).unlink(missing_ok=True)
        os.symlink(fill(target), fill(link))
    for file, text in case.get("write", {}).items():
        Path(fill(file)).parent.mkdir(parents=True, exist_ok=True)
        Path(fill(file)).write_text(fill(text))
    for target, mode in case.get("chmod", {}).items():
        os.chmod(fill(target), int(mode, 8))
    for target, user in case.get("chown", {}).items():
        os.chown(fill(target), pwd.getpwnam(user).pw_uid, -1)
    return [[fill(arg) for arg in args] for args in case["commands"]]


def test_the_corpus_holds_at_least_40_inputs():
    assert sum(1 for _ in _cases()) >= 40


@pytest.mark.parametrize("path", list(_cases()))
def test_bad_input_is_refused_cleanly_and_changes_nothing(path, prepared, cli_runner, tmp_path):
    commands = _commands(path, prepared, tmp_path)
    before = fingerprint(prepared["data"], prepared["target"])
    for args in commands:
        result = cli_runner(args)
        assert_clean_error(result, multiline_ok=path.parent.name == "descriptors")
    assert fingerprint(prepared["data"], prepared["target"]) == before
