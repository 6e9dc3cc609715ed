"""The example in docs/kan.md runs (smaller data and fewer steps), so the docs cannot rot."""
import re
import warnings
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "kan.md"


def test_docs_example_runs(tmp_path, monkeypatch):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    code = code.replace("torch.rand(1000, 2)", "torch.rand(64, 2)").replace("range(10)", "range(1)").replace(
        "line_search_fn=\"strong_wolfe\")", "max_iter=5)")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ns: dict = {}
        exec(compile(code, str(DOC), "exec"), ns)
    assert (tmp_path / "kan.png").is_file()
    assert (tmp_path / "kan_model" / "config.json").is_file()
    assert ns["small"].width[0] == 2
