"""The docs build (``mkdocs build --strict``), the API reference, and every ```python block.

Blocks of one page run in order in one namespace (a later block may use an earlier one's
names), each page in a fresh namespace.  Mark a block that must not run as ```text.  A
block right after the line ``<!-- run: torchrun --nproc-per-node N -->`` is a script
for every rank: it runs as ``python -m torch.distributed.run --standalone
--nproc-per-node N`` (gloo, CPU) in a temporary folder.  README.md's blocks run too.
"""

import dataclasses
import importlib
import inspect
import os
import pkgutil
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import funrl

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
# page -> why its blocks are not run here (none: every block runs)
NOT_RUN: dict[str, str] = {}
_BLOCK = re.compile(
    r"^(?:<!-- *run: *torchrun +--nproc-per-node[ =](\d+) *--> *\n)?"
    r"```python[ \t]*\n(.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_TORCHRUN_TIMEOUT_S = 300


def python_blocks(text: str) -> list[str]:
    return [code for _, code in _BLOCK.findall(text)]


def blocks_with_ranks(text: str) -> list[tuple[int, str]]:
    """``(nproc, code)`` per block; ``nproc`` 0 for a block run in this process."""
    return [(int(n) if n else 0, code) for n, code in _BLOCK.findall(text)]


def test_block_extraction():
    text = "a\n```python\nx = 1\n```\n```text\nno\n```\n```python\ny = x\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = x\n"]
    text = "<!-- run: torchrun --nproc-per-node 2 -->\n```python\nz = 2\n```\n" + text
    assert blocks_with_ranks(text) == [(2, "z = 2\n"), (0, "x = 1\n"), (0, "y = x\n")]


def _run_torchrun(code: str, nproc: int, where: Path, name: str) -> str:
    script = where / f"{name}.py"
    script.write_text(code)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={nproc}", script.name]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FUNRL_DIST_TIMEOUT": "120"}
    env.pop("FUNRL_DIST_FAULT", None)
    proc = subprocess.run(
        cmd, cwd=where, env=env, capture_output=True, text=True, timeout=_TORCHRUN_TIMEOUT_S
    )
    assert proc.returncode == 0, f"{name} on {nproc} ranks failed:\n{proc.stderr[-4000:]}"
    return proc.stdout


def run_blocks(label: str, text: str, where: Path) -> list[str]:
    """Run ``text``'s blocks (see the module docstring); the torchrun ones' stdout."""
    namespace: dict = {"__name__": f"docs_{label.replace('/', '_').replace('.', '_')}"}
    outputs = []
    for i, (nproc, block) in enumerate(blocks_with_ranks(text)):
        where_ = f"{label}, python block {i + 1}"
        if nproc:
            outputs.append(_run_torchrun(block, nproc, where, f"block{i + 1}"))
            continue
        try:
            exec(compile(block, where_, "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{where_} failed: {type(e).__name__}: {e}\n{block}") from e
    return outputs


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks((DOCS / p).read_text())])
def test_code_blocks_run(page, tmp_path, monkeypatch):
    if page in NOT_RUN:
        pytest.skip(NOT_RUN[page])
    monkeypatch.chdir(tmp_path)
    outputs = run_blocks(page, (DOCS / page).read_text(), tmp_path)
    if page == "guides/scaling-out.md":
        # the population script: rank 0 printed the whole table and wrote the checkpoint
        population, data_parallel = outputs
        assert population.count("\n") >= 9 and "lr" in population.splitlines()[0]
        assert funrl.checkpoint.load(tmp_path / "pop.pt").meta["updates"] == 4
        # the data-parallel script: every rank finished 4 updates of 2 x 4 x 16 env steps
        for r in (0, 1):
            assert f"rank {r}: 4 updates, 512 env steps" in data_parallel


def test_every_page_with_python_runs_here():
    """No page is exempt: every python block in docs/ is run by test_code_blocks_run."""
    assert NOT_RUN == {}


@pytest.mark.slow
def test_readme_blocks_run(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text()
    assert python_blocks(text), "README.md has no python block: drop this test"
    monkeypatch.chdir(tmp_path)
    run_blocks("README.md", text, tmp_path)


def test_every_nav_page_exists_and_every_page_is_in_nav():
    nav = re.findall(r":\s*([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.MULTILINE)
    assert nav and all((DOCS / p).is_file() for p in nav), [
        p for p in nav if not (DOCS / p).is_file()
    ]
    assert sorted(nav) == PAGES


def _shell_commands() -> list[tuple[str, list[str]]]:
    """``(where, argv)`` of every ``funrl ...`` and ``... -m funrl.distributed ...`` line in
    the ```bash blocks of docs/ and README.md (``\\`` continuations joined)."""
    out = []
    for path in [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]:
        text = path.read_text()
        for block in re.findall(r"^```(?:bash|sh)[ \t]*\n(.*?)^```", text, re.M | re.S):
            for line in block.replace("\\\n", " ").splitlines():
                argv = shlex.split(line, comments=True)
                if argv[:1] in (["funrl"], [".venv/bin/funrl"]):
                    out.append((f"{path.name}: {line.strip()}", ["funrl", *argv[1:]]))
                elif (
                    "funrl.distributed" in argv
                    and argv[argv.index("funrl.distributed") - 1] == "-m"
                ):
                    rest = argv[argv.index("funrl.distributed") + 1 :]
                    out.append((f"{path.name}: {line.strip()}", ["funrl.distributed", *rest]))
    return out


def test_shell_commands_in_the_docs_parse():
    """The documented ``funrl`` and ``python -m funrl.distributed`` command lines are
    accepted by their parsers, and a run's ``--set`` names and values by ``parse_run``."""
    from funrl import arguments, cli
    from funrl.distributed import cli as dist_cli

    commands = _shell_commands()
    assert any(argv[0] == "funrl.distributed" for _, argv in commands)
    for where, argv in commands:
        parser = cli.build_parser() if argv[0] == "funrl" else dist_cli.build_parser()
        try:
            args = parser.parse_args(argv[1:])
            if (
                getattr(args, "algo", None) and getattr(args, "config", "") is None
            ):  # a run, no TOML
                arguments.parse_run(args)
        except SystemExit as e:
            raise AssertionError(f"{where}: rejected ({e})") from e


def _hook() -> dict:
    return runpy.run_path(str(DOCS / "api" / "_generate.py"))


def _section(text: str, name: str) -> str:
    """The rendered entry of the symbol ``name`` (up to the next symbol of its level)."""
    start = re.search(rf"^(#+) `{re.escape(name)}` {{#", text, re.M)
    assert start, f"no entry for {name}"
    level = len(start.group(1))
    end = re.compile(rf"^#{{2,{level}}} ", re.M).search(text, start.end())
    return text[start.start() : end.start() if end else len(text)]


def _outside_code(markdown: str) -> list[str]:
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and not line.startswith("        "):  # nor an indented code block
            lines.append(line)
    return lines


def _api_modules() -> list[str]:
    return [
        m
        for p in sorted((DOCS / "api").glob("*.md"))
        for m in re.findall(r"^::: *([\w.]+)", p.read_text(), re.M)
    ]


def test_api_hook_lists_public_symbols():
    hook = _hook()
    text = hook["render"]("funrl.checkpoint")
    for name in ("save", "load", "Checkpointer", "resumed"):
        assert f"### `{name}` {{#funrl.checkpoint.{name}}}" in text
    save = _section(text, "save")
    assert "Write `state`" in save  # the docstring's first paragraph ...
    assert "Returns the path written." in save  # ... and the rest of it
    assert "def save(\n    path: str | os.PathLike[str]," in save  # the signature
    # Args: a definition list naming every parameter, with its description
    assert "**Args**" in save
    for param in inspect.signature(funrl.checkpoint.save).parameters:
        assert re.search(rf"^`{param}`.*\n:   \S", save, re.M), param
    assert "`meta`\n:   plain values (numbers, strings, lists, dicts)" in save


def test_api_records_show_their_fields_and_examples():
    hook = _hook()
    train = importlib.import_module("funrl.train")
    text = hook["render"]("funrl.train")
    result = _section(text, "TrainResult")
    assert "*dataclass*" in result and "**Attributes**" in result
    for field in dataclasses.fields(train.TrainResult):
        # every field, with its type, in a definition term or the "Other fields" line
        assert re.search(rf"`{field.name}: [^`]+`", result), field.name
    assert "`eval_return: float" in result
    assert "the last deterministic evaluation's mean return" in result
    # the module's Example:: is a fenced python block with its doctest prompts
    assert "**Example**\n\n```python\n>>> import funrl\n" in text
    # a NamedTuple's fields; Args split where two entries share a line; Returns as text
    ppo = hook["render"]("funrl.algos.ppo")
    assert "`actor: fnn.Model`\n:   `apply(params, obs [..., obs_dim]) -> out`." in ppo
    assert "`gae_lambda: torch.Tensor = 0.95`\n:   GAE lambda." in ppo
    gae = _section(hook["render"]("funrl.returns"), "gae")
    assert "`terminated_t`, `truncated_t`\n:   bool `[T, *B]`." in gae
    assert "**Returns:** advantages, float `[T, *B]`." in gae
    assert "```python\n>>> import torch\n" in gae
    # a class's own methods and properties get entries
    env = hook["render"]("funrl.envs.base")
    assert "#### `Environment.step` {#funrl.envs.base.Environment.step}" in env
    assert "#### `Environment.num_actions`" in env and "*property*" in env
    # a re-export links to its full entry on the page that has it
    top = hook["render"]("funrl")
    assert "[`funrl.train.train`](train.md#funrl.train.train)" in top


def test_api_pages_leave_no_docstring_markup_raw():
    """Every section header, role, literal block and doctest was converted."""
    hook = _hook()
    raw = re.compile(
        r"^(Args|Arguments|Returns|Raises|Attributes|Examples?|Notes?|Warnings?)::?\s*$"
        r"|::$|:(func|class|meth|mod|attr|data|exc):`|^\s*>>> |``"
    )
    for module in _api_modules():
        text = hook["render"](module)
        assert "could not be imported" not in text, module
        leftovers = [ln for ln in _outside_code(text) if raw.search(ln.replace("```", ""))]
        assert not leftovers, f"{module}: {leftovers[:5]}"


def _public_modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(funrl.__path__, "funrl.")
        if not any(part.startswith("_") for part in m.name.split("."))
    )


def test_every_public_module_is_documented():
    """Each public module has a ``:::`` section or is named in its package's section
    (``This section also documents the submodules ...``), and then everything it defines
    is exported by a documented module (so it has a full entry somewhere)."""
    hook = _hook()
    documented = _api_modules()
    assert len(documented) == len(set(documented)), "a module is documented twice"
    exported = set()
    for module in documented:
        mod = importlib.import_module(module)
        exported |= {id(getattr(mod, n)) for n in hook["public_names"](mod)}
    for required in (
        "funrl.algos.ppo",
        "funrl.algos.offpolicy",
        "funrl.buffers",
        "funrl.nn",
        "funrl.envs.wrappers",
        "funrl.loop",
        "funrl.hooks",
        "funrl.evaluation",
        "funrl.arguments",
        "funrl.distributed",
    ):
        assert required in documented
    problems = []
    for name in _public_modules():
        if name in documented:
            continue
        parents = [d for d in documented if name.startswith(d + ".")]
        if not parents:
            problems.append(f"{name}: no API section, nor a documented package")
            continue
        parent = max(parents, key=len)
        named = re.search(r"also documents the submodules (.*)\.$", hook["render"](parent), re.M)
        if not named or f"`{name}`" not in named.group(1):
            problems.append(f"{name}: not named in {parent}'s section")
        mod = importlib.import_module(name)
        for sym in hook["public_names"](mod):
            obj = getattr(mod, sym)
            if (inspect.isclass(obj) or inspect.isroutine(obj)) and id(obj) not in exported:
                problems.append(f"{name}.{sym}: exported by no documented module")
    assert not problems, "\n".join(problems)


def test_mkdocs_build_strict(tmp_path):
    # mkdocs is in the `test` extra (scripts/setup.sh installs it): never skipped
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
    # arguments as a definition list, examples as highlighted python
    assert "<dt><code>path</code></dt>\n<dd>the file to write" in page
    assert '<pre><code class="language-python">&gt;&gt;&gt; import tempfile' in page
    for api_page in (tmp_path / "site" / "api").glob("*/index.html"):
        headings = re.findall(r"<h[2-4][^>]*>(.*?)</h[2-4]>", api_page.read_text(), re.S)
        assert headings and not [h for h in headings if "{#" in h], api_page  # ids applied
    train = (tmp_path / "site" / "api" / "train" / "index.html").read_text()
    assert 'id="funrl.train.TrainResult"' in train and "<dt><code>history: list" in train
