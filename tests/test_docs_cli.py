"""docs/cli.md cannot rot: every `nnlab ...` command in it names a real subcommand and real options."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer

from nnlab.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def doc_commands() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if "nnlab" not in line:
                continue
            words = shlex.split(line)
            if words[0] == "nnlab":
                cmds.append(words[1:])
            elif "-m" in words and words[words.index("-m") + 1] == "nnlab":
                cmds.append(words[words.index("-m") + 2:])
    return cmds


def resolve(group, words: list[str]):
    cmd, rest = group, list(words)
    while hasattr(cmd, "commands") and rest and not rest[0].startswith("-"):
        assert rest[0] in cmd.commands, f"docs name an unknown subcommand {rest[0]!r}"
        cmd, rest = cmd.commands[rest[0]], rest[1:]
    return cmd, rest


def test_docs_commands_use_real_options():
    root = typer.main.get_command(app)
    cmds = doc_commands()
    assert len(cmds) >= 15
    seen = set()
    for words in cmds:
        cmd, rest = resolve(root, words)
        if cmd.name == "bench":
            continue  # the script's own options follow the name
        opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
        for w in rest:
            if w.startswith("-"):
                assert w.split("=")[0] in opts, f"`{' '.join(words)}`: {w} is not an option of {cmd.name}"
        seen.add(cmd.name)
    assert {"train", "prune", "inject", "merge", "loss", "boundary", "activations"} <= seen


def test_docs_python_snippet_runs(tmp_path, monkeypatch):
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert code, "docs/cli.md lost its Python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(code[0].replace("epochs=100", "epochs=2"), str(DOC), "exec"), {})
    assert (tmp_path / "runs" / "py" / "model" / "model.json").is_file()
    assert len((tmp_path / "runs" / "py" / "metrics.jsonl").read_text().splitlines()) == 2
