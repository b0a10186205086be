"""Codebase shape: the import graph has no cycle and respects the layers (ruff runs in .ci/run)."""

import subprocess
import sys

from tests.conftest import REPO


def test_import_graph_has_no_cycle_no_breach_and_entry_points_only_in_bin():
    proc = subprocess.run([sys.executable, "-m", "scripts.import_graph"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "import cycles: 0" in proc.stdout and "layer breaches: 0" in proc.stdout


def test_import_graph_catches_a_cycle_and_an_upward_import(tmp_path):
    """The checker itself bites: a package with a cycle and an upward import fails."""
    package = tmp_path / "espnet_softvc"
    for sub in ("utils", "softvc", "bin"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "utils" / "a.py").write_text("def f():\n    from espnet_softvc.softvc import b\n")  # upward
    (package / "softvc" / "b.py").write_text("from espnet_softvc.utils import a\n")  # a <-> b cycle
    (package / "softvc" / "c.py").write_text("def main():\n    pass\n")  # an entry point outside bin/
    cmd = [sys.executable, "-m", "scripts.import_graph", "--root", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "import cycles: 1" in proc.stdout and "espnet_softvc.utils.a -> espnet_softvc.softvc.b" in proc.stdout
    assert "entry points outside bin/: 1" in proc.stdout and "espnet_softvc.softvc.c" in proc.stdout
