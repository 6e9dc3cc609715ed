"""docs/cli.md's block on schedules, early stopping, best/, TensorBoard, export and gradual pruning
runs as written (with fewer epochs and rows), through the real CLI."""
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nnlab as nl
from nnlab.cli import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
pytestmark = pytest.mark.filterwarnings("ignore::nnlab.kan.layer.GridRangeWarning")


def _block() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("**Schedules, early stopping, best checkpoints, TensorBoard, export.**")
    block = re.search(r"```bash\n(.*?)```", text[start:], flags=re.S).group(1)
    return [shlex.split(line.split("#", 1)[0])[1:] for line in block.splitlines() if line.startswith("nnlab")]


def _small(words: list[str]) -> list[str]:
    out = list(words)
    if "--epochs" in out:
        out[out.index("--epochs") + 1] = "6"
    if out[0] == "train":
        out += ["--samples", "120", "--no-progress"]
    if "--grid-extend" in out:
        out[out.index("--grid-extend") + 1] = "3,5"
    return out


def test_cli_doc_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cmds = _block()
    assert [c[0] for c in cmds] == ["train", "export", "export", "train", "prune"]
    runner = CliRunner()
    for words in cmds:
        r = runner.invoke(app, _small(words))
        assert r.exit_code == 0, f"nnlab {' '.join(words)}:\n{r.output}"
    assert (tmp_path / "moons.onnx").is_file() and (tmp_path / "best.pt2").is_file()
    assert (tmp_path / "runs" / "moons" / "tensorboard").is_dir()
    model, _ = nl.load_model(tmp_path / "runs" / "moons" / "best")
    assert nl.load_model(tmp_path / "runs" / "kan")[0].grid == [5, 5]
