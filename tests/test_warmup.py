"""``--compile auto`` (funrl.warmup) and ``funrl.train``'s switch to compiled units."""

from __future__ import annotations

import os
import time

import pytest
import torch

import funrl
from funrl import warmup
from funrl.algos import ppo
from funrl.cli import main
from funrl.compiling import compile_events

TINY = ["num_envs=2", "num_steps=8", "hidden=8", "update_epochs=1", "num_minibatches=1"]


def _tiny_config(**kw):
    fields = dict(env="CartPole-v1", num_envs=2, num_steps=8, hidden=(8,), update_epochs=1,
                  num_minibatches=1, total_timesteps=16 * 6)  # fmt: skip
    return ppo.Config(**{**fields, **kw})


def _flat(state):
    return torch.cat([p.reshape(-1) for p in funrl.tree.leaves(state.params)])


def test_train_switches_to_compiled_units_when_told():
    algo = ppo.make(_tiny_config())
    hp = ppo.HParams.create()
    calls, events = [], []

    def switch(updates, first_update_s):
        calls.append((updates, first_update_s))
        return updates == 2

    with compile_events(lambda name, event, s: events.append((len(calls), name, event))):
        res = funrl.train(algo, funrl.random.key(0), hp, compile=switch, progress=False,
                          eval_episodes=1)  # fmt: skip
    eager = funrl.train(algo, funrl.random.key(0), hp, compile=False, progress=False,
                        eval_episodes=1)  # fmt: skip
    # asked before each update until it said yes, with the first update's time
    assert [u for u, _ in calls] == [0, 1, 2]
    assert calls[0][1] == 0.0 and calls[1][1] > 0 and calls[2][1] == calls[1][1]
    # units compile at the third update, not before; none recompiles on eager-made state
    assert {name for _, name, _ in events} >= {"unit 'collect'", "unit 'learn'"}
    assert all(asked == 3 for asked, _, _ in events)
    assert all(e != "recompile" for _, _, e in events)
    assert res.updates == 6
    # the same training as eager, to float rounding (compiled kernels round differently)
    torch.testing.assert_close(_flat(res.state), _flat(eager.state), rtol=1e-4, atol=1e-5)


def _auto(tmp_path, total, say):
    auto = warmup.AutoCompile.for_config(
        "ppo", _tiny_config(), ppo.HParams.create(), total_updates=total, eval_episodes=1,
        say=say,
    )  # fmt: skip
    return auto, auto.sig


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "funrl-warm"


def test_auto_stays_eager_for_short_runs(tmp_path, cache):
    said = []
    auto, _ = _auto(tmp_path, total=3, say=said.append)
    assert auto(0, 0.0) is False  # nothing decided before an update has run
    assert auto(1, 0.5) is False and auto(2, 0.5) is False
    assert len(said) == 1 and "eager" in said[0] and auto.proc is None


def test_auto_compiles_at_once_where_the_run_is_marked_warm(tmp_path, cache):
    said = []
    auto, sig = _auto(tmp_path, total=1000, say=said.append)
    warmup._write_mark(sig, {"algo": "ppo"})
    assert warmup.is_warm(sig)
    assert auto(1, 0.5) is True and auto.proc is None
    assert auto(2, 0.5) is False  # decided once
    assert "cached" in said[0]
    # cached, but with ~3 s of eager work left loading it would not pay; ~6 s would
    short, _ = _auto(tmp_path, total=7, say=said.append)
    assert short(1, 0.5) is False and "eager" in said[-1]
    longer, _ = _auto(tmp_path, total=13, say=said.append)
    assert longer(1, 0.5) is True and "cached" in said[-1]


def test_signature_follows_what_compiled_code_depends_on():
    hp = ppo.HParams.create()
    base = warmup.signature("ppo", _tiny_config(), hp, 1)
    assert base == warmup.signature("ppo", _tiny_config(), ppo.HParams.create(lr=1e-3), 1)
    assert base != warmup.signature("ppo", _tiny_config(num_envs=4), hp, 1)
    assert base != warmup.signature("ppo", _tiny_config(), hp, 2)
    assert base != warmup.signature("a2c", _tiny_config(), hp, 1)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert base != warmup.signature("ppo", _tiny_config(), hp, 1)
    finally:
        torch.set_num_threads(threads)


def test_auto_does_not_switch_for_the_last_few_updates(tmp_path, cache):
    # the background compile finished, but too little eager work is left to load it
    said = []
    auto, sig = _auto(tmp_path, total=40, say=said.append)
    auto.decided = True  # as after starting a background compile
    warmup._write_mark(sig, {"algo": "ppo"})
    assert auto(32, 0.5) is False and "eager" in said[-1]  # 4 s left
    assert auto(33, 0.5) is False and len(said) == 1  # decided
    again, _ = _auto(tmp_path, total=40, say=said.append)
    again.decided = True
    assert again(20, 0.5) is True and "switching" in said[-1]  # 10 s left


def test_auto_says_when_the_background_compile_fails(tmp_path, cache):
    said = []
    auto, _ = _auto(tmp_path, total=1000, say=said.append)
    auto.spec = {**auto.spec, "algo": "no-such-algo"}
    assert auto(1, 0.5) is False and auto.proc is not None
    assert auto.proc.wait(timeout=120) != 0
    assert auto(2, 0.5) is False
    assert "failed" in said[-1] and str(auto.log) in said[-1]
    assert auto(3, 0.5) is False and len(said) == 2


def test_cli_auto_compiles_in_the_background_then_uses_the_cache(
    tmp_path, cache, capsys, monkeypatch
):
    # first run: cold, so eager while a background process compiles; it goes on after
    # the run, marks the configuration, and the next run compiles from the cache at once
    sets = [x for kv in TINY for x in ("--set", kv)]
    argv = ["train", "ppo", "--total-steps", "48", "--threads", "1", "--eval-episodes", "1",
            *sets]  # fmt: skip
    monkeypatch.setattr(warmup, "WARM_SWITCH_S", 0.0)  # so tiny a run would stay eager
    warmup_eager = warmup.EAGER_ENOUGH_S
    try:
        warmup.EAGER_ENOUGH_S = 0.0  # likewise
        assert main([*argv, "--out", str(tmp_path / "a")]) == 0
        err = capsys.readouterr().err
        assert "eager while a background process compiles this run" in err
        pid = int(next(cache.glob("*.pid")).read_text())
        deadline = time.monotonic() + 600
        while warmup._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
            try:  # reap it where this process is its parent
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        log = next(cache.glob("*.log")).read_text()
        assert "compiled ppo in" in log, log
        # what it needed is gone; its log and the mark stay
        assert not list(cache.glob("*.pid")) and not list(cache.glob("*.spec.pt"))
        assert len(list(cache.glob("*.json"))) == 1
        assert main([*argv, "--out", str(tmp_path / "b")]) == 0
        err = capsys.readouterr().err
        assert "compiled code for this run is cached: compiling" in err
        assert "compiled unit 'learn'" in err
    finally:
        warmup.EAGER_ENOUGH_S = warmup_eager


def test_compile_flag_forms():
    from funrl.cli import build_parser

    p = build_parser()
    assert p.parse_args(["train", "ppo"]).compile == "auto"
    assert p.parse_args(["train", "ppo", "--compile"]).compile == "on"
    assert p.parse_args(["train", "ppo", "--compile", "off"]).compile == "off"
    assert p.parse_args(["train", "ppo", "--no-compile"]).compile == "off"


def test_auto_stays_eager_where_the_cache_folder_is_unusable(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(blocker))
    said = []
    auto, sig = _auto(tmp_path, total=1000, say=said.append)
    assert not warmup.is_warm(sig)
    assert auto(1, 0.5) is False and auto.proc is None
    assert "cannot start a background compile" in said[0]
    assert auto(2, 0.5) is False and len(said) == 1


_BUILDER = """
# {token}
from funrl.algos import ppo

SCALE = {scale}


def loss_fn(nets, config, params, mb, hp):
    loss, aux = ppo.ppo_loss(nets, config, params, mb, hp)
    return loss * SCALE, aux


def build():
    config = ppo.Config(env="CartPole-v1", num_envs=2, num_steps=8, hidden=(8,),
                        update_epochs=1, num_minibatches=1, total_timesteps=96)
    return ppo.make(config, loss_fn=loss_fn)
"""


def test_auto_for_a_variant_of_your_own(tmp_path, monkeypatch):
    # a variant built by an importable function: compiled in the background from it,
    # cached after, and an edit of its module starts over
    module = tmp_path / "my_variant.py"
    module.write_text(_BUILDER.format(token=tmp_path.name, scale=1.0))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_variant

    monkeypatch.setattr(warmup, "EAGER_ENOUGH_S", 0.0)
    hp = ppo.HParams.create()
    algo = my_variant.build()
    said = []

    def auto():
        return warmup.AutoCompile.for_builder(
            "my_variant:build", algo, hp, total_updates=1000, eval_episodes=1, say=said.append
        )

    first = auto()
    res = funrl.train(algo, funrl.random.key(0), hp, compile=first, progress=False,
                      eval_episodes=1, num_updates=3)  # fmt: skip
    assert res.updates == 3 and "background process" in said[-1]
    assert first.proc is not None and first.proc.wait(timeout=600) == 0, first.log.read_text()
    second = auto()
    assert second(1, 0.5) is True and "cached" in said[-1]
    module.write_text(_BUILDER.format(token=tmp_path.name, scale=2.0))  # the edit
    assert not warmup.is_warm(auto().sig)


def test_auto_for_builder_errors():
    algo, hp = ppo.make(_tiny_config()), ppo.HParams.create()
    for bad, message in [("no_colon", "module:function"), ("__main__:build", "importable"),
                         ("funrl.warmup:nope", "no function 'nope'")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            warmup.AutoCompile.for_builder(bad, algo, hp, total_updates=10)
