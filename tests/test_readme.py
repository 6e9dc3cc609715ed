"""The README's Python blocks run as written, and its shell commands use real options."""
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnlab.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
PY_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
BASH_LINES = [line for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S)
              for line in block.splitlines() if line.strip().startswith(("nnlab ", "torchrun "))]


@pytest.mark.parametrize("i", range(len(PY_BLOCKS)))
def test_python_blocks_run(i):
    exec(compile(PY_BLOCKS[i], f"README.md python block {i}", "exec"), {})


@pytest.mark.parametrize("line", BASH_LINES)
def test_shell_commands_parse(line):
    words = shlex.split(line.split("#")[0])
    if words[0] == "torchrun":
        words = words[words.index("nnlab") + 1:]
    else:
        words = words[1:]
    sub = [w for w in words if not w.startswith("-")][:1]
    options = {w.split("=")[0] for w in words if w.startswith("--")}
    help_text = CliRunner().invoke(app, sub + ["--help"], terminal_width=200).output
    assert help_text, line
    for opt in options:
        assert opt in help_text, f"{opt} is not an option of 'nnlab {' '.join(sub)}'"
