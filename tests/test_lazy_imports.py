"""``import funrl`` is lazy: ``funrl --help``, ``--version`` and ``list`` never import
torch (their time is in benchmarks/bench_cli_startup.py), and every public attribute of
the package still resolves to what it always was."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import funrl

_PROBE = (  # funrl.cli.main: the command's entry() ends the process (os._exit) after it
    "import sys\n"
    "from funrl.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('TORCH_LOADED' if 'torch' in sys.modules else 'NO_TORCH')\n"
)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["list"], ["train", "--help"]])
def test_quick_commands_do_not_import_torch(argv):
    run = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("NO_TORCH"), run.stdout


def test_every_public_name_resolves():
    for name in funrl.__all__:
        assert getattr(funrl, name) is not None, name
    assert sorted(dir(funrl)) == sorted(funrl.__all__)
    from funrl.evaluation import evaluate
    from funrl.train import train

    assert funrl.train is train and funrl.evaluate is evaluate  # functions, not modules
    assert isinstance(funrl.tree, types.ModuleType) and callable(funrl.compile)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        funrl.nope  # noqa: B018


def test_list_names_every_registered_builtin_env(capsys):
    from funrl._builtin_envs import BUILTIN_ENVS
    from funrl.cli import main
    from funrl.envs.registry import registered

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for env_id, _, _ in BUILTIN_ENVS:  # (other tests may register more in this process)
        assert env_id in out and env_id in registered()
