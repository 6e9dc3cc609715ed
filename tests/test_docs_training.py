"""docs/training.md: every python block runs, in order, in one namespace (the docs cannot rot)."""
import re
from pathlib import Path

import torch

torch.set_num_threads(1)

DOC = Path(__file__).resolve().parents[1] / "docs" / "training.md"


def test_training_doc_snippets_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 4
    ns: dict = {}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), ns)
    out = capsys.readouterr().out
    assert "held-out risk" in out
    acc = float(re.search(r"accuracy: train (\d+)%", out).group(1))
    assert acc > 95
    assert float(re.search(r"digits: held-out accuracy ([\d.]+)%", out).group(1)) > 90
