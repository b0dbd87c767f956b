"""The zoo runner: a preset's seeds as one population, equal to `funrl train --seed i`,
its result files, and the report's table."""

from __future__ import annotations

import json

import pytest

import funrl
from funrl import cli, zoo
from funrl.algos import ppo


def test_zoo_seed_i_is_funrl_train_with_seed_i(tmp_path) -> None:
    r = zoo.run("ppo", "CartPole-v1", seeds=2, total_timesteps=2048, compile=False,
                final_episodes=40, out=tmp_path, progress=False)  # fmt: skip
    algo = ppo.make(ppo.Config.preset("CartPole-v1", total_timesteps=2048))
    one = funrl.train(algo, funrl.random.key(1), ppo.HParams.preset("CartPole-v1"),
                      compile=False, progress=False)  # fmt: skip
    assert r["curve"]["returns"][-1][1] == float(one.eval_return)  # bit for bit, eager
    # the final evaluation is `funrl eval CHECKPOINT --seed 1 --episodes 40`'s
    final = funrl.evaluate(algo, one.state, funrl.random.key(1), num_episodes=40)
    assert r["final"][1] == pytest.approx(float(final.mean()), rel=1e-6)
    assert r["final_episodes"] == 40 and r["eval_episodes"] == 10
    assert r["env_steps"] == 2048 and r["shortened"]
    assert r["curve"]["env_steps"] == [1024, 2048]  # evaluated along the way
    assert [len(x) for x in r["curve"]["returns"]] == [2, 2]
    saved = json.loads((tmp_path / "ppo" / "CartPole-v1.json").read_text())
    assert saved["final"] == r["final"] and saved["preset"]["lr"] == 2.5e-3
    pytest.importorskip("matplotlib")
    assert (tmp_path / "ppo" / "CartPole-v1.png").stat().st_size > 1000


def _fake(tmp_path, algo: str, env: str, finals: list[float], threshold: float, ref: float):
    folder = tmp_path / algo
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "algo": algo, "env": env, "seeds": len(finals), "final": finals,
        "mean": sum(finals) / len(finals), "std": 1.0, "min": min(finals),
        "env_steps": 50_000, "wall_s": 12.3, "shortened": False, "threshold": threshold,
        "reference": {"source": "rl-zoo", "mean_return": ref, "env_steps": 100_000, "std": 2.0},
        "curve": {"env_steps": [], "returns": []},
        "machine": {"cores": 2, "cpu": "x86_64", "threads": 1, "torch": "2.13.0"},
    }  # fmt: skip
    (folder / f"{env}.json").write_text(json.dumps(data))


def test_report_counts_seeds_and_says_worse(tmp_path) -> None:
    _fake(tmp_path, "dqn", "Acrobot-v1", [-80.0, -70.0, -120.0], -100.0, -76.639)
    _fake(tmp_path, "ppo", "CartPole-v1", [500.0, 500.0], 475.0, 500.0)
    text = zoo.report(tmp_path)
    assert (tmp_path / "README.md").read_text() == text
    dqn_row = next(line for line in text.splitlines() if line.startswith("| dqn | Acrobot"))
    assert "2/3 (≥ -100)" in dqn_row and "1/3 (worse)" in dqn_row and "50k" in dqn_row
    ppo_row = next(line for line in text.splitlines() if line.startswith("| ppo | CartPole"))
    assert "2/2 (≥ 475)" in ppo_row and "| 2/2 |" in ppo_row and "worse" not in ppo_row
    assert "- sac on Pendulum-v1: not run yet" in text
    assert "MinAtar-Breakout-v1: 17 minutes" in text  # skipped presets say why
    assert "| 10 |" in dqn_row  # results from before final_episodes: the last evaluation's


def test_final_episodes_default_and_bad_values(tmp_path) -> None:
    with pytest.raises(ValueError, match="final_episodes must be >= 1, got 0"):
        zoo.run("ppo", "CartPole-v1", seeds=1, final_episodes=0, out=None, progress=False)
    r = zoo.run("ppo", "CartPole-v1", seeds=1, total_timesteps=1024, compile=False,
                out=tmp_path, progress=False)  # fmt: skip
    assert r["final_episodes"] == zoo.FINAL_EPISODES
    saved = tmp_path / "ppo" / "CartPole-v1.json"
    data = {**json.loads(saved.read_text()), "shortened": False}
    saved.write_text(json.dumps(data))
    row = next(x for x in zoo.report(tmp_path).splitlines() if x.startswith("| ppo |"))
    assert f"| {zoo.FINAL_EPISODES:,} |" in row


def test_zoo_cli_run_and_report(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "z")
    argv = ["zoo", "run", "--algo", "ppo", "--env", "CartPole-v1", "--seeds", "2"]
    argv += ["--total-steps", "1024", "--no-compile", "--quiet", "--out", out]
    assert cli.main(argv) == 0
    assert "zoo: ppo on CartPole-v1:" in capsys.readouterr().out
    assert cli.main(["zoo", "report", "--out", out]) == 0
    assert "only a shortened run is recorded" in capsys.readouterr().out
    assert cli.main(["zoo", "run", "--algo", "td3", "--env", "CartPole-v1", "--out", out]) == 2
    assert "no preset of td3 for CartPole-v1" in capsys.readouterr().err


def test_an_interrupted_zoo_run_writes_nothing(tmp_path, monkeypatch) -> None:
    import dataclasses

    from funrl import population as pop

    real = pop.train

    def stopped(*args, **kwargs):  # as if SIGTERM arrived during the run
        return dataclasses.replace(real(*args, **kwargs), interrupted="SIGTERM")

    monkeypatch.setattr(pop, "train", stopped)
    with pytest.raises(KeyboardInterrupt, match="interrupted"):
        zoo.run("ppo", "CartPole-v1", seeds=2, total_timesteps=1024, compile=False,
                out=tmp_path, progress=False)  # fmt: skip
    assert not any(tmp_path.iterdir())
