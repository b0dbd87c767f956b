"""Presets (funrl/presets/<algo>.toml): every one loads, validates and builds; the CLI and
``Config.preset`` / ``HParams.preset`` apply them, and their fields can be overridden."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
import warnings

import pytest
import torch

import funrl
from funrl import arguments, cli, presets
from funrl._builtin_envs import HOST_PREFIXES
from funrl.algos import a2c, dqn, ppo, td3
from funrl.envs import registry

ALL = [(algo, env) for algo, envs in presets.available().items() for env in envs]


def test_every_algorithm_has_presets_for_classic_control() -> None:
    discrete = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0")
    continuous = ("Pendulum-v1", "MountainCarContinuous-v0")
    have = presets.available()
    for algo in ("ppo", "a2c"):
        assert set(discrete + continuous) <= set(have[algo])
    assert set(discrete) <= set(have["dqn"])
    for algo in ("sac", "td3", "ddpg"):
        assert set(continuous) <= set(have[algo])
    assert "CartPole-v1" in have["sac"]  # discrete SAC


@pytest.mark.parametrize(("algo", "env"), ALL, ids=[f"{a}-{e}" for a, e in ALL])
def test_preset_loads_validates_and_builds(algo: str, env: str) -> None:
    mod = importlib.import_module(f"funrl.algos.{algo}")
    if env.startswith("atari:"):
        pytest.importorskip("ale_py")
        env = env.replace("*", "Breakout")  # a pattern table: one id it matches
    if env.startswith("envpool:"):
        if not os.environ.get("CI"):  # CI installs the envpool extra: never skip there
            pytest.importorskip("envpool")
        env = env.replace("*", "Breakout")
    preset = presets.load(algo, env)
    cfg_fields, hp_fields = preset.split(mod.Config, mod.HParams)  # no unknown field
    assert set(cfg_fields) | set(hp_fields) == set(preset.fields)
    config = mod.Config.preset(env)
    hparams = mod.HParams.preset(env)
    hparams.check()
    for name, value in cfg_fields.items():
        assert getattr(config, name) == value, name
    for name, value in hp_fields.items():
        assert float(getattr(hparams, name)) == pytest.approx(value, rel=1e-6), name
    assert env in registry.registered() or env.startswith(HOST_PREFIXES)
    # Settings an off-policy preset needs to learn at all.
    if hasattr(config, "learning_starts"):
        assert config.learning_starts < config.total_timesteps
        assert config.buffer_size >= min(config.total_timesteps, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a preset that warns at make is a broken preset
        mod.make(config)
    assert preset.threshold is not None, "every preset states what it should reach"
    if preset.reference is not None:
        assert preset.reference.env_steps >= config.total_timesteps, (
            "a preset's budget is at most its reference's"
        )


def test_preset_overrides_and_subclasses() -> None:
    config = dqn.Config.preset("Acrobot-v1", batch_size=32)
    want = presets.load("dqn", "Acrobot-v1").fields
    assert (config.env, config.hidden, config.batch_size) == (
        "Acrobot-v1",
        tuple(want["hidden"]),
        32,
    )
    hp = dqn.HParams.preset("Acrobot-v1", lr=1e-3)
    assert float(hp.lr) == pytest.approx(1e-3)
    assert float(hp.eps_end) == pytest.approx(0.1)

    @dataclasses.dataclass(frozen=True)
    class MyConfig(ppo.Config):
        extra: int = 3

    mine = MyConfig.preset("Acrobot-v1", extra=4)
    ppo_want = presets.load("ppo", "Acrobot-v1").fields
    assert (mine.extra, mine.normalize_obs, mine.num_steps) == (4, True, ppo_want["num_steps"])
    assert presets.algo_of(MyConfig) == "ppo"
    assert presets.algo_of(a2c.Config) == "a2c"  # a2c's Config subclasses ppo's


def test_missing_preset_and_bad_override_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"no td3 preset for 'CartPole-v1'.*Pendulum-v1"):
        td3.Config.preset("CartPole-v1")
    with pytest.raises(ValueError, match="unknown algorithm 'dqm'"):
        presets.find("dqm", "CartPole-v1")
    with pytest.raises(TypeError):
        ppo.Config.preset("CartPole-v1", not_a_field=1)
    with pytest.raises(ValueError, match="num_envs"):
        ppo.Config.preset("CartPole-v1", num_envs=0)
    with pytest.raises(ValueError, match="unknown field"):
        ppo.HParams.preset("CartPole-v1", lrr=1.0)
    with pytest.raises(ValueError, match="is not a funrl algorithm"):
        presets.algo_of(int)


def test_pattern_tables_match_and_exact_ids_win(monkeypatch: pytest.MonkeyPatch) -> None:
    table = {
        "atari:*": presets.Preset("ppo", "atari:*", {"num_envs": 8}),
        "atari:Pong": presets.Preset("ppo", "atari:Pong", {"num_envs": 4}),
    }
    monkeypatch.setattr(presets, "_file", lambda algo: table)
    assert presets.find("ppo", "atari:Breakout").fields["num_envs"] == 8
    assert presets.find("ppo", "atari:Pong").fields["num_envs"] == 4
    assert presets.find("ppo", "CartPole-v1") is None


def test_bad_preset_tables_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown \[zoo\] key"):
        presets._preset("ppo", "X", {"zoo": {"threshhold": 1}})
    p = presets._preset("ppo", "X", {"lr": 1e-3, "nope": 1})
    with pytest.raises(ValueError, match="'nope' is neither"):
        p.split(ppo.Config, ppo.HParams)


def _run(argv: list[str]) -> arguments.Run:
    parser = cli.build_parser()
    args = parser.parse_args(["train", *argv])
    return arguments.parse_run(args)


def test_cli_starts_from_the_preset_and_overrides_win(tmp_path) -> None:
    run = _run(["dqn", "--env", "Acrobot-v1"])
    assert run.preset == "dqn/Acrobot-v1"
    want = presets.load("dqn", "Acrobot-v1").fields
    assert run.config.hidden == tuple(want["hidden"]) and run.config.num_envs == want["num_envs"]
    assert float(run.hparams.lr) == pytest.approx(want["lr"])
    assert run.overrides["lr"] == pytest.approx(want["lr"])  # populations get them too
    toml = tmp_path / "c.toml"
    toml.write_text("batch_size = 16\nlr = 1e-4\n")
    run = _run(["dqn", "--env", "Acrobot-v1", "--config", str(toml), "--set", "lr=2e-4"])
    assert run.config.batch_size == 16 and run.config.hidden == tuple(want["hidden"])
    assert float(run.hparams.lr) == pytest.approx(2e-4)
    run = _run(["dqn", "--env", "Acrobot-v1", "--no-preset"])
    assert run.preset is None and run.config == dqn.Config(env="Acrobot-v1")
    assert float(run.hparams.lr) == float(dqn.HParams.create().lr)
    run = _run(["dqn", "--env", "funrl/ActionReward-v0"])  # no dqn preset for it: defaults
    assert run.preset is None and run.config == dqn.Config(env="funrl/ActionReward-v0")


def test_cli_default_env_is_the_algorithms() -> None:
    assert _run(["sac"]).config.env == "Pendulum-v1"
    assert _run(["td3"]).preset == "td3/Pendulum-v1"
    assert _run(["ppo"]).config.env == "CartPole-v1"


def test_cli_resume_keeps_the_runs_own_config() -> None:
    base = dqn.Config(env="Acrobot-v1", batch_size=8)
    args = cli.build_parser().parse_args(["train", "dqn"])
    run = arguments.parse_run(args, base=base)
    assert run.preset is None and run.config == base


def test_funrl_list_shows_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "presets" in out and "dqn: CartPole-v1, Acrobot-v1, MountainCar-v0" in out
    assert cli.main(["list", "dqn"]) == 0
    out = capsys.readouterr().out
    assert "Acrobot-v1: " in out and "hidden=[64, 64]" in out and "threshold -100" in out
    assert cli.main(["list", "dqm"]) == 2
    assert "Did you mean dqn" in capsys.readouterr().err


def test_train_header_names_the_preset(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    want = presets.load("ppo", "Acrobot-v1").fields
    one_update = str(want["num_envs"] * want["num_steps"])
    argv = ["train", "ppo", "--env", "Acrobot-v1", "--total-steps", one_update, "--no-compile"]
    assert cli.main([*argv, "--quiet", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "ppo on Acrobot-v1 (preset ppo/Acrobot-v1)" in out
    assert "1 updates" in out
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["preset"] == "ppo/Acrobot-v1"


def _one_agent(total: int, eval_every: int | None = None, target: float | None = None) -> None:
    algo = ppo.make(ppo.Config(num_envs=2, num_steps=8, total_timesteps=total, hidden=(8,)))
    funrl.train(algo, funrl.random.key(0), ppo.HParams.create(), compile=False,
                progress=False, eval_episodes=1, eval_every=eval_every,
                target_return=target)  # fmt: skip


def test_warnings_for_runs_that_cannot_do_what_was_asked() -> None:
    with pytest.warns(UserWarning, match=r"less than one update \(16 env steps"):
        _one_agent(10)
    with pytest.warns(UserWarning, match=r"eval_every \(5\) is more than the run's 2 updates"):
        _one_agent(32, eval_every=5)
    with pytest.warns(UserWarning, match="cannot stop early"):
        _one_agent(32, target=100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _one_agent(32, eval_every=1, target=1e9)  # a sensible run: no warning
    with pytest.warns(UserWarning, match="<= learning_starts"):
        dqn.make(dqn.Config(total_timesteps=500, learning_starts=1000))


def test_warning_for_an_evaluation_without_a_finished_episode(monkeypatch) -> None:
    from funrl import evaluation

    real = evaluation.make_evaluate

    def short(*a, **k):  # CartPole episodes outlast a 3-step evaluation
        k["max_steps"] = 3
        return real(*a, **k)

    train = importlib.import_module("funrl.train")  # alone in a worker it is not yet imported
    monkeypatch.setattr(train, "make_evaluate", short)
    with pytest.warns(UserWarning, match="finished no evaluation episode"):
        _one_agent(32)


def test_cli_warnings_are_one_line(tmp_path) -> None:
    import subprocess

    argv = ["train", "sac", "--total-steps", "64", "--no-compile", "--quiet"]
    proc = subprocess.run(
        [sys.executable, "-m", "funrl", *argv, "--out", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "funrl: warning: sac: total_timesteps (64) <= learning_starts (1000)" in err
    assert "UserWarning" not in err


def test_parse_run_namespace_without_preset_attribute() -> None:
    """Callers that build their own Namespace (older scripts) still get the preset."""
    ns = argparse.Namespace(
        algo="dqn", env="Acrobot-v1", config=None, total_steps=None, set=None, imports=[]
    )
    assert arguments.parse_run(ns).preset == "dqn/Acrobot-v1"
    assert torch.is_tensor(arguments.parse_run(ns).hparams.lr)


def test_atari_presets_are_cleanrls_published_settings() -> None:
    from funrl.envs import atari

    ppo_cfg, ppo_hp = presets.find("ppo", "atari:Pong").split(ppo.Config, ppo.HParams)
    assert {k: ppo_cfg[k] for k in atari.PPO_CONFIG} == atari.PPO_CONFIG
    assert ppo_hp == pytest.approx(atari.PPO_HPARAMS)
    dqn_cfg, dqn_hp = presets.find("dqn", "atari:Pong").split(dqn.Config, dqn.HParams)
    assert {k: dqn_cfg[k] for k in atari.DQN_CONFIG} == atari.DQN_CONFIG
    assert {k: dqn_hp[k] for k in atari.DQN_HPARAMS} == pytest.approx(atari.DQN_HPARAMS)
    for algo in ("ppo", "dqn"):  # EnvPool's Atari tasks: the same settings
        ale, pool = presets.find(algo, "atari:Pong"), presets.find(algo, "envpool:Pong-v5")
        assert ale is not None and pool is not None and pool.fields == ale.fields


def test_cli_discrete_sac_gets_discrete_defaults() -> None:
    from funrl.algos import sac

    run = _run(["sac", "--env", "CartPole-v1", "--no-preset", "--set", "discrete=true"])
    assert type(run.hparams) is sac.DiscreteHParams
    assert float(run.hparams.target_entropy_scale) == pytest.approx(0.89)
    assert type(_run(["sac"]).hparams) is sac.HParams
