"""Every script in examples/ runs with ``--quick`` (in-process, to skip interpreter start-up)."""

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_the_examples_exist():
    assert {"quickstart.py", "ppo_variants.py", "lr_sweep.py", "pbt.py", "custom_env.py"} <= set(
        SCRIPTS
    )


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_quick(script, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [script, "--quick"]
    if script in ("lr_sweep.py", "pbt.py"):
        argv += ["--out", str(tmp_path / "plot.png")]
    if script == "quickstart.py":
        argv += ["--out", str(tmp_path / "qs")]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    out = capsys.readouterr().out
    assert "return" in out
    if script in ("lr_sweep.py", "pbt.py"):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            assert "no plot" in out
        else:
            assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    if script == "quickstart.py":
        assert (tmp_path / "qs" / "final.pt").is_file() and (
            tmp_path / "qs" / "policy.pt2"
        ).is_file()
