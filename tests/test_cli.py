import json
import subprocess
import sys

import pytest

from funrl.cli import ALGOS, main


def _fails(argv, message):
    """``funrl ARGV`` fails as bad input: exit code 2 and one line on stderr matching
    ``message`` (run in a subprocess-free way: main() returns the code)."""
    import contextlib
    import io
    import re

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own errors
            code = e.code
    text = err.getvalue().strip()
    assert code == 2, (code, text)
    assert len(text.splitlines()) == 1, text
    assert re.search(message, text), (message, text)


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ppo" in out and "CartPole-v1" in out and "gym:" in out


def test_train_small_run(tmp_path, capsys):
    rc = main(
        [
            "train",
            "ppo",
            "--env",
            "CartPole-v1",
            "--total-steps",
            "128",
            "--no-compile",
            "--set",
            "num_envs=4",
            "--set",
            "num_steps=16",
            "--set",
            "lr=1e-3",
            "--set",
            "hidden=16,16",
            "--out",
            str(tmp_path),
            "--quiet",
            "--eval-episodes",
            "2",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "final evaluation" in out and "mean return" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["updates"] == 2 and summary["hparams"]["lr"] == pytest.approx(1e-3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "ppoo"], "unknown algorithm 'ppoo'.*Did you mean ppo"),
        (["train", "ppo", "--env", "CartPol-v1"], "unknown env 'CartPol-v1'.*CartPole-v1"),
        (["train", "ppo", "--set", "lrr=1"], "unknown field 'lrr'.*Did you mean lr"),
        (["train", "ppo", "--set", "lr=-1"], r"HParams.lr must be > 0"),
        (["train", "ppo", "--set", "gamma=1.5"], r"gamma must be in \[0, 1\]"),
        (["train", "ppo", "--set", "num_envs=many"], "num_envs expects an integer"),
        (["train", "ppo", "--set", "lr"], "expects name=value"),
        (
            ["train", "ppo", "--env", "Pendulum-v1", "--set", "policy=categorical"],
            "needs a Discrete action space",
        ),
    ],
)
def test_bad_arguments_fail_before_training(argv, message):
    _fails(argv, message)


def test_console_script_help():
    out = subprocess.run(
        [sys.executable, "-m", "funrl", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--set NAME=VALUE" in out and "--no-compile" in out


_SMALL = ["--total-steps", "128", "--no-compile", "--quiet", "--eval-episodes", "1"]


def test_config_file_and_set_precedence(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'env = "CartPole-v1"\nnum_envs = 4\nnum_steps = 16\nhidden = [8]\n'
        "lr = 1e-3\nanneal_lr = false\ngamma = 0.9\n"
    )
    rc = main(
        [
            "train",
            "ppo",
            "--config",
            str(cfg),
            "--set",
            "gamma=0.95",
            "--out",
            str(tmp_path / "run"),
            *_SMALL,
        ]
    )
    assert rc == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["updates"] == 2  # 128 steps / (4 envs * 16 steps)
    assert summary["hparams"]["lr"] == pytest.approx(1e-3)
    assert summary["hparams"]["gamma"] == pytest.approx(0.95)  # --set wins over the file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lrr = 1e-3\n", "run.toml: unknown field 'lrr'.*Did you mean lr"),
        ("num_envs = 2.5\n", "num_envs expects an integer"),
        ("hidden = 64\n", "hidden expects a list of integers"),
        ("anneal_lr = 1\n", "anneal_lr expects true/false"),
        ("[ppo]\nlr = 1\n", r"\[ppo\] tables are not supported"),
        ("lr = \n", "invalid TOML"),
        ('env = "CartPol-v1"\n', "unknown env 'CartPol-v1'"),
    ],
)
def test_bad_config_files(tmp_path, text, message):
    (tmp_path / "run.toml").write_text(text)
    _fails(["train", "ppo", "--config", str(tmp_path / "run.toml")], message)


def test_missing_config_file(tmp_path):
    _fails(["train", "ppo", "--config", str(tmp_path / "nope.toml")], "not found")


def test_checkpoint_eval_and_export(tmp_path, capsys):
    ckpt = tmp_path / "final.pt"
    rc = main(
        [
            "train",
            "a2c",
            "--set",
            "num_envs=4",
            "--set",
            "num_steps=16",
            "--set",
            "hidden=8",
            "--out",
            str(tmp_path / "run"),
            "--checkpoint",
            str(ckpt),
            *_SMALL,
        ]
    )
    assert rc == 0 and ckpt.is_file()
    assert f"funrl eval {ckpt}" in capsys.readouterr().out
    assert main(["eval", str(ckpt), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "a2c on CartPole-v1 (2 updates): 3 episodes, mean return" in out
    assert main(["export", str(ckpt), "-o", str(tmp_path / "p.pt2")]) == 0
    assert "torch.export" in capsys.readouterr().out and (tmp_path / "p.pt2").is_file()
    _fails(
        ["eval", str(tmp_path / "run" / "metrics.csv")], r"not a funrl checkpoint|not a readable"
    )
    try:
        import moviepy  # noqa: F401
        import pygame  # noqa: F401
    except ImportError:  # without the video extra, --video fails with a clear message
        _fails(
            ["eval", str(ckpt), "--episodes", "1", "--video", str(tmp_path / "video")],
            r"--video needs Gymnasium's rendering extras",
        )


def test_eval_population_member(tmp_path, capsys):
    import torch

    import funrl
    from funrl import checkpoint
    from funrl import population as pop
    from funrl.algos import ppo

    algo = ppo.make(ppo.Config(num_envs=2, num_steps=8, hidden=(8,)))
    hps = pop.hparams(ppo.HParams, 2)
    states = torch.func.vmap(algo.init, randomness="error")(
        pop.member_keys(funrl.random.key(0), 2), hps
    )
    checkpoint.save(tmp_path / "pop.pt", states, algo=algo, hparams=hps)
    assert main(["eval", str(tmp_path / "pop.pt"), "--episodes", "2"]) == 0  # every member
    out = capsys.readouterr().out
    assert "2 members, 2 episodes each, best first" in out
    assert "member 0: 2 episodes" in out and "member 1: 2 episodes" in out
    assert main(["eval", str(tmp_path / "pop.pt"), "--member", "1", "--episodes", "2"]) == 0
    assert "member 1: 2 episodes, mean return" in capsys.readouterr().out
    _fails(
        ["eval", str(tmp_path / "pop.pt"), "--member", "2"], r"--member 2: .* holds members 0\.\.1"
    )
    _fails(
        ["export", str(tmp_path / "pop.pt"), "-o", str(tmp_path / "p.pt2")],
        "pick one with --member",
    )
    assert (
        main(["export", str(tmp_path / "pop.pt"), "--member", "1", "-o", str(tmp_path / "p.pt2")])
        == 0
    )


def test_plot_command(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    for seed in (0, 1):
        run = tmp_path / f"ppo-s{seed}"
        run.mkdir()
        rows = [
            {"update": u, "env_steps": 10 * u, "episode_return": float(u + seed)} for u in (1, 2, 3)
        ]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "c.png"
    assert main(["plot", str(tmp_path / "ppo-s0"), str(tmp_path / "ppo-s1"), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    _fails(["plot", str(tmp_path), "-o", str(out)], "no metrics file")
    (tmp_path / "crashed").mkdir()  # a run that died before its first update: skipped
    assert main(["plot", str(tmp_path / "ppo-s0"), str(tmp_path / "crashed"), "-o", str(out)]) == 0
    assert "skipped" in capsys.readouterr().err
    _fails(["plot", str(tmp_path / "ppo-s0"), "--y", "loss", "-o", str(out)], "no 'loss'")


def test_bench_runs_scripts_by_name(tmp_path, monkeypatch, capfd):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench_hello.py").write_text(
        "import sys\nprint('hello', sys.argv[1:])\nsys.exit(3 if '--fail' in sys.argv else 0)\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["bench"]) == 0
    assert "hello" in capfd.readouterr().out
    assert main(["bench", "hello", "--n", "2"]) == 0
    assert "hello ['--n', '2']" in capfd.readouterr().out
    assert main(["bench", "hello", "--fail"]) == 3
    _fails(["bench", "helo"], r"unknown benchmark 'helo'.*Did you mean hello")


# Tiny settings for `funrl train ALGO --nproc 2` (two updates); an algorithm that --nproc
# comes to allow without an entry here trains its default config for two updates.
_DP_SETS = {
    "ppo": ["num_envs=4", "num_steps=16"],
    "a2c": ["num_envs=4", "num_steps=16"],
    "dqn": ["num_envs=4", "learning_starts=8", "batch_size=8", "buffer_size=64", "hidden=16"],
}
_ENV = {"sac": "Pendulum-v1", "td3": "Pendulum-v1", "ddpg": "Pendulum-v1"}


def _runs_data_parallel(name: str) -> bool:
    import importlib

    from funrl import distributed

    mod = importlib.import_module(f"funrl.algos.{name}")
    try:
        distributed.data_parallel(mod.make(mod.Config(env=_ENV.get(name, "CartPole-v1"))))
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("algo", ALGOS)
def test_train_nproc_trains_every_algorithm_it_allows_on_two_processes(algo, tmp_path, monkeypatch):
    if not _runs_data_parallel(algo):  # refused with the reason, before any process starts
        from funrl import distributed

        monkeypatch.setattr(distributed, "launch", lambda *a, **k: pytest.fail("launched"))
        message = rf"^funrl: --nproc 2: {algo} cannot run data-parallel: [^\n]+$"
        _fails(["train", algo, "--env", _ENV.get(algo, "CartPole-v1"), "--nproc", "2"], message)
        return
    out, ckpt = tmp_path / "dp", tmp_path / "dp.pt"
    sets = [x for kv in _DP_SETS.get(algo, []) for x in ("--set", kv)]
    # ppo/a2c: 256 env steps in all = 2 updates of 2 ranks x 4 envs x 16 steps
    length = ["--total-steps", "256"] if algo in ("ppo", "a2c") else ["--updates", "2"]
    args = ["--nproc", "2", *length, "--no-compile", "--quiet", "--eval-episodes", "2"]
    args += ["--out", str(out), "--checkpoint", str(ckpt), *sets]
    rc = subprocess.run(
        [sys.executable, "-m", "funrl", "train", algo, *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert rc.returncode == 0, rc.stdout + rc.stderr
    assert "done: 2 rank(s), 2 updates" in rc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == algo and summary["mode"] == "data_parallel"
    assert summary["world_size"] == 2 and summary["updates"] == 2
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["update"] for r in rows] == [1, 2] and "eval_return" in rows[-1]
    if algo in ("ppo", "a2c"):
        assert summary["env_steps"] == 256  # the requested steps, not 2 x them
    assert main(["eval", str(ckpt), "--episodes", "2"]) == 0  # rank 0's agent
    if algo == "ppo":  # continue the run to 4 updates, into the same metrics file
        args[args.index("--total-steps") + 1] = "512"
        rc = subprocess.run(
            [sys.executable, "-m", "funrl", "train", algo, *args, "--resume", "auto"],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )
        assert rc.returncode == 0, rc.stdout + rc.stderr
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["update"] for r in rows] == [1, 2, 3, 4]
        assert json.loads((out / "summary.json").read_text())["resumed_from_update"] == 2


def test_eval_records_a_video(tmp_path, monkeypatch):
    pytest.importorskip("pygame")
    pytest.importorskip("moviepy")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    ckpt = tmp_path / "final.pt"
    assert (
        main(
            [
                "train",
                "ppo",
                "--total-steps",
                "128",
                "--no-compile",
                "--quiet",
                "--set",
                "num_envs=4",
                "--set",
                "num_steps=16",
                "--eval-episodes",
                "1",
                "--out",
                str(tmp_path / "run"),
                "--checkpoint",
                str(ckpt),
            ]
        )
        == 0
    )
    assert main(["eval", str(ckpt), "--episodes", "1", "--video", str(tmp_path / "video")]) == 0
    videos = list((tmp_path / "video").glob("*.mp4"))
    assert videos and videos[0].stat().st_size > 1000
