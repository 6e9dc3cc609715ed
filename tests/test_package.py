import subprocess
import sys

import nnlab as nl


def test_version_flag():
    out = subprocess.run([sys.executable, "-m", "nnlab", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.strip() == f"nnlab {nl.__version__}"
