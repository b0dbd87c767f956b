"""Runs a user can trust: run folders, bad input, interruption, resume, kill -9.

Every bad input is one line on stderr naming the argument, exit code 2, and nothing in
the working folder written or changed (a table-driven test).  A run stopped by SIGINT or
SIGTERM, or killed with -9 at random points (possibly inside a save), continues with
``--resume auto`` to final parameters bit-identical (eager) to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import funrl
from funrl import checkpoint, tree
from funrl.cli import main

# tiny eager PPO runs (64 env steps per update)
TINY = ["--no-compile", "--quiet", "--set", "num_envs=4", "--set", "num_steps=16"]
TINY += ["--set", "hidden=8", "--eval-episodes", "1"]


def _cli(argv: list[str]) -> tuple[int, str, str]:
    """``funrl ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own errors
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root``: its content hash (folders: ``"dir"``)."""
    snap = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        snap[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return snap


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with a finished single run, a population checkpoint, a non-empty folder,
    an existing checkpoint, and files that are not checkpoints."""
    from funrl import population as pop
    from funrl.algos import ppo

    root = tmp_path_factory.mktemp("runs")
    code, out, err = _cli(
        ["train", "ppo", "--total-steps", "128", *TINY, "--out", str(root / "run")]
    )
    assert code == 0, out + err
    algo = ppo.make(ppo.Config(num_envs=2, num_steps=8, hidden=(8,)))
    hps = pop.hparams(ppo.HParams, 2)
    states = torch.func.vmap(algo.init, randomness="error")(
        pop.member_keys(funrl.random.key(0), 2), hps
    )
    checkpoint.save(root / "pop.pt", states, algo=algo, hparams=hps)
    (root / "taken").mkdir()
    (root / "taken" / "notes.txt").write_text("an earlier run's files\n")
    checkpoint.save(root / "exists.pt", {"x": torch.zeros(2)})
    (root / "rand.pt").write_bytes(random.Random(0).randbytes(1000))
    (root / "text.pt").write_text("hello\n")
    return root


# (argv, what the one line on stderr says)
BAD_INPUT = [
    (["train", "ppo", "--total-steps", "0"], r"--total-steps: expected a positive integer, got 0"),
    (["train", "ppo", "--total-steps", "-5"], r"--total-steps: expected a positive integer"),
    (["train", "ppo", "--updates", "0"], r"--updates: expected a positive integer"),
    (["train", "ppo", "--set", "hidden=x"], r"hidden expects positive integers like 64,64"),
    (["train", "ppo", "--set", "hidden=0"], r"hidden expects positive integers"),
    (["train", "ppo", "--set", "lr=inf"], r"HParams.lr must be finite, got inf"),
    (["train", "ppo", "--set", "lr=nan"], r"HParams.lr must be finite"),
    (["train", "ppo", "--threads", "0"], r"--threads: expected a positive integer, got 0"),
    (["train", "ppo", "--eval-episodes", "0"], r"--eval-episodes: expected a positive integer"),
    (["train", "ppo", "--eval-every", "-1"], r"--eval-every: expected a positive integer"),
    (["train", "ppo", "--checkpoint-every", "0"], r"--checkpoint-every: .*positive integer"),
    (["train", "ppo", "--checkpoint-every", "5ksteps"], r"--checkpoint-every: .*'5k'"),
    (["train", "ppo", "--nproc", "0"], r"--nproc: expected a positive integer"),
    (["train", "ppoo"], r"unknown algorithm 'ppoo'.*Did you mean ppo"),
    (["train", "ppo", "--env", "CartPol-v1"], r"unknown env 'CartPol-v1'.*CartPole-v1"),
    (["train", "ppo", "--env", "InvertedPendulum-v5"], r"Gymnasium id: use 'gym:Inverted"),
    (["train", "ppo", "--env", "HalfCheetah"], r"Gymnasium has 'gym:HalfCheetah-v5'"),
    (["train", "ppo", "--env", "gym:Foo-v0"], r"gym:Foo-v0: Environment `Foo` doesn't exist"),
    (["train", "ppo", "--env", "gym:Pendulum-v0"], r"Pendulum-v0.*deprecated.*Pendulum-v1"),
    (["train", "ppo", "--env", "gym:CartPole-v9"], r"version `v9`.*doesn't exist"),
    (["train", "ppo", "--env", "atari:Breakoutt"], r"unknown Atari game 'Breakoutt'.*Breakout"),
    (
        ["train", "ppo", "--env", "gym:FrozenLake-v1"],
        r"flat \(1-d\) or image \(3-d\) Box observations, got Disc",
    ),
    (["train", "ppo", "--env", "gym:Blackjack-v1"], r"unsupported observation space Tuple"),
    (["train", "sac", "--env", "gym:CartPole-v1"], r"1-d Box action space, got Discrete\(2\)"),
    (["train", "ppo", "--set", "lrr=1"], r"unknown field 'lrr' for ppo. Did you mean lr"),
    (["train", "ppo", "--set", "zzz=1"], r"unknown field 'zzz' for ppo. HParams: .*Config: "),
    (["train", "ppo", "--out", "taken"], r"--out taken is not empty .*--resume auto.*--force"),
    (["train", "ppo", "--checkpoint", "exists.pt"], r"--checkpoint exists.pt exists.*--force"),
    (["train", "ppo", "--checkpoint", "taken"], r"--checkpoint taken is a folder"),
    (["train", "ppo", "--resume", "missing.pt"], r"--resume missing.pt: no such checkpoint"),
    (["train", "ppo", "--resume", "rand.pt"], r"--resume: rand.pt: not a funrl checkpoint"),
    (["train", "dqn", "--resume", "run"], r"--resume run/checkpoint.pt: a ppo run, not dqn"),
    (["train", "ppo", "--import", "no_such_module_x"], r"--import no_such_module_x: cannot"),
    (["eval", "run", "--episodes", "0"], r"--episodes: expected a positive integer"),
    (["eval", "run", "--member", "0"], r"--member 0: run holds one agent, not a population"),
    (["eval", "pop.pt", "--member", "5"], r"--member 5: pop.pt holds members 0\.\.1"),
    (["eval", "pop.pt", "--member", "-1"], r"--member: expected an integer >= 0"),
    (["eval", "rand.pt"], r"rand.pt: not a funrl checkpoint"),
    (["eval", "text.pt"], r"text.pt: not a funrl checkpoint"),
    (["eval", "missing.pt"], r"missing.pt: no such checkpoint file"),
    (["eval", "taken"], r"taken is a folder without a checkpoint.pt"),
    (["eval", "run", "--threads", "0"], r"--threads: expected a positive integer"),
    (["export", "run", "-o", "taken"], r"-o taken is a folder; give a file path"),
    (["export", "run", "-o", "nope/p.pt2"], r"-o nope/p.pt2: folder nope does not exist"),
    (["export", "run", "-o", "exists.pt"], r"-o exists.pt exists; add --force"),
    (["export", "pop.pt", "-o", "p.pt2"], r"population of 2: pick one with --member I"),
    (["plot", "taken", "-o", "c.png"], r"no metrics file"),
    (["plot", "run", "--smooth", "0"], r"--smooth: expected a positive integer"),
    (["nosuchcommand"], r"invalid choice: 'nosuchcommand'"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUT, ids=[" ".join(a) for a, _ in BAD_INPUT])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, message, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    before = _snapshot(workdir)
    code, out, err = _cli(argv)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.search(message, lines[0]), (message, lines[0])
    assert _snapshot(workdir) == before  # nothing written, nothing overwritten


def test_summary_and_checkpoint_record_the_run(workdir):
    summary = json.loads((workdir / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["interrupted_by"] is None
    assert summary["seed"] == 0 and summary["algo"] == "ppo" and summary["env"] == "CartPole-v1"
    assert summary["command"][:3] == ["funrl", "train", "ppo"] and "--out" in summary["command"]
    assert summary["config"]["num_envs"] == 4 and summary["config"]["hidden"] == [8]
    assert summary["hparams"]["lr"] > 0 and summary["versions"]["torch"] == torch.__version__
    assert summary["updates"] == 2 and summary["env_steps"] == 128
    ck = checkpoint.load(workdir / "run" / "checkpoint.pt")
    assert ck.meta["seed"] == 0 and ck.meta["status"] == "completed" and ck.meta["updates"] == 2
    assert ck.meta["command"] == summary["command"] and ck.config.num_envs == 4


def test_every_run_gets_its_own_folder_and_force_overwrites(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20260101-000000")  # same second
    for _ in range(2):
        code, out, err = _cli(["train", "ppo", "--total-steps", "64", *TINY])
        assert code == 0, out + err
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert folders == ["ppo-CartPole-v1-s0-20260101-000000", "ppo-CartPole-v1-s0-20260101-000000-2"]
    taken = tmp_path / "runs" / folders[0]
    code, out, err = _cli(["train", "ppo", "--total-steps", "128", *TINY, "--out", str(taken)])
    assert code == 2 and "not empty" in err
    code, out, err = _cli(
        ["train", "ppo", "--total-steps", "128", *TINY, "--out", str(taken), "--force"]
    )
    assert code == 0, out + err
    assert json.loads((taken / "summary.json").read_text())["updates"] == 2
    assert len((taken / "metrics.jsonl").read_text().splitlines()) == 2  # not appended


def test_checkpoint_every_in_updates_or_env_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saves: list[int] = []
    original = checkpoint.save

    def spy(path, state, **kw):
        saves.append(kw["meta"]["updates"])
        return original(path, state, **kw)

    monkeypatch.setattr(checkpoint, "save", spy)
    for every, expected in (("2", [2, 4, 5]), ("150steps", [3, 5])):  # 64 steps per update
        saves.clear()
        argv = ["train", "ppo", "--total-steps", "320", *TINY, "--checkpoint-every", every]
        code, out, err = _cli([*argv, "--out", f"r{every}"])
        assert code == 0, out + err
        assert saves == expected, (every, saves)


def test_remove_stale_temporaries_on_save_and_load(tmp_path):
    path = checkpoint.save(tmp_path / "c.pt", {"x": torch.ones(3)})
    stale = tmp_path / ".c.pt.abc123.tmp"  # what a save killed mid-write leaves
    stale.write_bytes(b"\0" * 1000)
    other = tmp_path / ".d.pt.abc123.tmp"  # another file's: left alone
    other.write_bytes(b"\0")
    checkpoint.load(path)
    assert not stale.exists() and other.exists()
    stale.write_bytes(b"\0")
    checkpoint.save(path, {"x": torch.ones(3)})
    assert not stale.exists() and other.exists()


def test_import_makes_a_user_env_trainable_and_evaluable_anywhere(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "my_envs.py").write_text(
        "from funrl.envs import registry\n"
        "from funrl.envs.classic_control import CartPole\n"
        "registry.register('my/CartPole-v0', lambda **kw: CartPole(**kw), overwrite=True)\n"
    )
    monkeypatch.chdir(tmp_path / "proj")
    argv = ["train", "ppo", "--env", "my/CartPole-v0", "--import", "my_envs", *TINY]
    code, out, err = _cli([*argv, "--total-steps", "64", "--out", "r"])
    assert code == 0, out + err
    assert json.loads(Path("r/summary.json").read_text())["imports"] == ["my_envs"]
    # elsewhere, in a fresh interpreter: the recorded import and folder are used
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "funrl", "eval", str(tmp_path / "proj" / "r"), "--episodes", "1"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "ppo on my/CartPole-v0" in run.stdout


def _tiny_command(out: Path, updates: int) -> list[str]:
    return [sys.executable, "-m", "funrl", "train", "ppo", "--updates", str(updates), *TINY,
            "--eval-every", "5", "--checkpoint-every", "1", "--out", str(out)]  # fmt: skip


def _lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except OSError:
        return 0


def _rows(out: Path, skip: tuple[str, ...] = ("update_s", "time_s")) -> list[str]:
    """metrics.jsonl without the wall-clock columns, as JSON text (NaN equals NaN)."""
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [json.dumps({k: v for k, v in r.items() if k not in skip}) for r in rows]


def _run_until(cmd: list[str], out: Path, lines: int, sig: int, cwd: Path) -> subprocess.Popen:
    """Start ``cmd``, send ``sig`` once ``out/metrics.jsonl`` has ``lines`` rows."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while _lines(out / "metrics.jsonl") < lines and proc.poll() is None:
        assert time.time() < deadline, "the run never got there"
        time.sleep(0.01)
    proc.send_signal(sig)
    return proc


UPDATES = 24


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted run of ``UPDATES`` updates: its final state and metric rows."""
    root = tmp_path_factory.mktemp("straight")
    run = subprocess.run(
        _tiny_command(root / "r", UPDATES), capture_output=True, text=True, cwd=root, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return checkpoint.load(root / "r" / "checkpoint.pt").state, _rows(root / "r")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_and_resume_auto_finishes_bit_identical(sig, code, straight, tmp_path):
    out = tmp_path / "r"
    proc = _run_until(_tiny_command(out, UPDATES), out, 6, sig, tmp_path)
    stdout, stderr = proc.communicate(timeout=120)
    name = signal.Signals(sig).name
    assert proc.returncode == code, stdout + stderr
    assert "Traceback" not in stderr
    assert f"interrupted ({name}) after" in stdout and "--resume auto" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["interrupted_by"] == name
    ck = checkpoint.load(out / "checkpoint.pt")
    assert ck.meta["status"] == "interrupted" and 6 <= ck.meta["updates"] < UPDATES
    again = [a for a in stdout.split("continue with: ", 1)[1].split()]  # the printed command
    assert again[:2] == ["funrl", "train"]
    run = subprocess.run(
        [sys.executable, "-m", "funrl", *again[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    final = checkpoint.load(out / "checkpoint.pt").state
    assert tree.all_equal(final, straight[0])
    assert _rows(out) == straight[1]  # the same metrics file, continued


def test_kill_9_at_random_points_then_resume_auto_is_bit_identical(straight, tmp_path):
    """Three kill -9 at random moments (every update saves, so some land in a save),
    then ``--resume auto`` until done: the final state and metrics equal an
    uninterrupted run's, and no temporary file is left."""
    out = tmp_path / "r"
    cmd = _tiny_command(out, UPDATES)
    rng = random.Random(1234)
    for _ in range(3):
        done = _lines(out / "metrics.jsonl")
        proc = subprocess.Popen(
            [*cmd, "--resume", "auto"],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        target = done + rng.randint(1, 5)
        deadline = time.time() + 120
        while _lines(out / "metrics.jsonl") < target and proc.poll() is None:
            assert time.time() < deadline
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.02))  # somewhere inside an update or a save
        proc.kill()
        proc.wait()
        assert json.loads((out / "summary.json").read_text())["status"] == "running"
    run = subprocess.run(
        [*cmd, "--resume", "auto"], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert tree.all_equal(checkpoint.load(out / "checkpoint.pt").state, straight[0])
    assert _rows(out) == straight[1]
    assert not list(out.glob(".*.tmp"))


def test_population_run_resumes_bit_identical_and_evaluates_ranked(tmp_path, monkeypatch, capsys):
    """``python -m funrl.distributed population`` in one process: the same folder rules,
    ``--resume auto`` equal to a straight run, and ``funrl eval`` ranks its members."""
    from funrl.distributed.cli import main as dmain

    monkeypatch.chdir(tmp_path)
    base = ["population", "ppo", "--population", "3", *TINY]
    assert dmain([*base, "--updates", "4", "--out", "straight"]) == 0
    assert dmain([*base, "--updates", "2", "--out", "r"]) == 0
    assert dmain([*base, "--updates", "4", "--out", "r"]) == 2  # not empty: refused
    assert "is not empty" in capsys.readouterr().err
    assert dmain([*base, "--updates", "4", "--out", "r", "--resume", "auto"]) == 0
    a = checkpoint.load(tmp_path / "r" / "checkpoint.pt")
    b = checkpoint.load(tmp_path / "straight" / "checkpoint.pt")
    assert tree.all_equal(a.state, b.state) and a.meta["updates"] == 4
    # (the 2-update run evaluated at its own end, update 2)
    skip = ("update_s", "time_s", "eval_return")
    assert _rows(tmp_path / "r", skip) == _rows(tmp_path / "straight", skip)
    assert (
        json.loads((tmp_path / "r" / "summary.json").read_text())["eval_returns"]
        == (json.loads((tmp_path / "straight" / "summary.json").read_text())["eval_returns"])
    )
    capsys.readouterr()
    assert main(["eval", "r", "--episodes", "1"]) == 0
    assert "3 members, 1 episodes each, best first" in capsys.readouterr().out


def test_population_run_stops_on_sigint_with_a_checkpoint(tmp_path):
    out = tmp_path / "p"
    cmd = [sys.executable, "-m", "funrl.distributed", "population", "ppo", "--population", "2"]
    cmd += [*TINY, "--updates", "400", "--out", str(out)]
    proc = _run_until(cmd, out, 2 * 3, signal.SIGINT, tmp_path)  # 3 updates of 2 members
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted (SIGINT)" in stdout and "Traceback" not in stderr
    ck = checkpoint.load(out / "checkpoint.pt")
    assert ck.meta["status"] == "interrupted" and 3 <= ck.meta["updates"] < 400
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"
