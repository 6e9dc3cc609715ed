"""Every ```python block of the guides whose blocks stand alone runs as written (the docs
cannot rot). Guides with a shared namespace or shortened data have their own tests:
docs/training.md, docs/cli.md, docs/kan.md, docs/symbolic.md and README.md."""
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
# guide -> the fewest python blocks it must keep
GUIDES = {"blocks.md": 4, "prune.md": 4, "transfer.md": 3}
CASES = [(name, i) for name in GUIDES
         for i in range(len(re.findall(r"```python\n", (DOCS / name).read_text(encoding="utf-8"))))]


def blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("name", sorted(GUIDES))
def test_guide_keeps_its_examples(name):
    assert len(blocks(name)) >= GUIDES[name]


@pytest.mark.parametrize("name,i", CASES)
def test_guide_block_runs(name, i, capsys):
    exec(compile(blocks(name)[i], f"docs/{name}[block {i}]", "exec"), {"__name__": f"docs_block_{i}"})
    assert capsys.readouterr().out.strip()  # every block shows its result
