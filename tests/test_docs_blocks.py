"""Run every ```python block of docs/blocks.md, so the README section cannot rot."""
import re
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

DOC = Path(__file__).resolve().parents[1] / "docs" / "blocks.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_doc_has_examples():
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_doc_block_runs(i, capsys):
    exec(compile(BLOCKS[i], f"{DOC.name}[block {i}]", "exec"), {"__name__": f"docs_block_{i}"})
    assert capsys.readouterr().out.strip()          # every block prints something
