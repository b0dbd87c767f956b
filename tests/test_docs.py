"""The docs build (``mkdocs build --strict``) and every ```python block in docs/ runs.

Blocks of one page run in order in one namespace (a later block may use an earlier one's
names), each page in a fresh namespace.  Mark a block that must not run as ```text; a
page whose blocks are meant for another context (torchrun) is listed in ``NOT_RUN``.
"""

import importlib.util
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
# page -> why its blocks are not run here
NOT_RUN = {
    "guides/scaling-out.md": "blocks are for torchrun scripts, not self-contained, and train "
    "a 64-member population (~55 s here)",
}
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def test_block_extraction():
    text = "a\n```python\nx = 1\n```\n```text\nno\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x\n"]


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks((DOCS / p).read_text())])
def test_code_blocks_run(page, tmp_path, monkeypatch):
    if page in NOT_RUN:
        pytest.skip(NOT_RUN[page])
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.replace('/', '_')}"}
    for i, block in enumerate(python_blocks((DOCS / page).read_text())):
        try:
            exec(compile(block, f"{page} block {i + 1}", "exec"), namespace)
        except Exception as e:
            raise AssertionError(
                f"{page}, python block {i + 1} failed: {type(e).__name__}: {e}\n{block}"
            ) from e


def test_every_nav_page_exists_and_every_page_is_in_nav():
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    assert nav and all((DOCS / p).is_file() for p in nav), [
        p for p in nav if not (DOCS / p).is_file()
    ]
    assert sorted(nav) == PAGES


def test_api_hook_lists_public_symbols():
    hook = runpy.run_path(str(DOCS / "api" / "_generate.py"))
    text = hook["render"]("funrl.checkpoint")
    for name in ("save", "load", "Checkpointer", "resumed"):
        assert f"**`{name}`**" in text
    assert "Write `state`" in text  # the docstring's first paragraph
    api_modules = {
        m
        for p in (DOCS / "api").glob("*.md")
        for m in re.findall(r"^::: *([\w.]+)", p.read_text(), re.M)
    }
    # every public funrl module has an API page
    for mod in (
        "funrl.checkpoint",
        "funrl.export",
        "funrl.interop",
        "funrl.plot",
        "funrl.population",
        "funrl.train",
        "funrl.envs",
        "funrl.optim",
        "funrl.losses",
        "funrl.returns",
    ):
        assert mod in api_modules


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed")
def test_mkdocs_build_strict(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    page = (tmp_path / "site" / "api" / "checkpoint" / "index.html").read_text()
    assert "Checkpointer" in page and "could not be imported" not in page
