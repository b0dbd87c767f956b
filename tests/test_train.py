import json
import math
from pathlib import Path

import pytest
import torch

import funrl
from funrl import tree
from funrl.algos import ppo
from funrl.testing import assert_trees_close

TINY = ppo.Config(env="CartPole-v1", num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3)


def test_train_writes_metrics_and_summary(tmp_path):
    algo = ppo.make(TINY)
    r = funrl.train(
        algo,
        funrl.random.key(0),
        ppo.HParams.create(),
        compile=False,
        progress=False,
        out_dir=tmp_path,
        eval_episodes=3,
    )
    assert r.updates == 3 and r.env_steps == 3 * 64
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["update"] for row in rows] == [1, 2, 3]
    assert "eval_return" in rows[-1] and "eval_return" not in rows[0]
    csv_lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and csv_lines[0].startswith("loss,")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["algo"] == "ppo" and summary["updates"] == 3
    assert summary["hparams"]["lr"] == pytest.approx(2.5e-3)
    assert math.isfinite(r.eval_return) and r.eval_return == summary["eval_return"]


def test_train_stops_at_target_and_by_callback():
    algo = ppo.make(TINY)
    hp = ppo.HParams.create()
    r = funrl.train(
        algo,
        funrl.random.key(0),
        hp,
        compile=False,
        progress=False,
        eval_every=1,
        eval_episodes=2,
        target_return=0.0,
    )
    assert r.updates == 1 and r.reached_target_at == 64
    seen = []
    r = funrl.train(
        algo,
        funrl.random.key(0),
        hp,
        compile=False,
        progress=False,
        num_updates=5,
        callback=lambda i, s, row: seen.append(i) or i == 1,
    )
    assert seen == [0, 1] and r.updates == 2


def test_train_is_deterministic_and_checks_hparams():
    algo = ppo.make(TINY)
    hp = ppo.HParams.create()
    a = funrl.train(algo, funrl.random.key(5), hp, compile=False, progress=False, num_updates=2)
    b = funrl.train(algo, funrl.random.key(5), hp, compile=False, progress=False, num_updates=2)
    assert funrl.tree.all_equal(a.state.params, b.state.params)
    assert a.history[0]["loss"] == b.history[0]["loss"]
    with pytest.raises(ValueError, match="gae_lambda"):
        funrl.train(algo, funrl.random.key(0), ppo.HParams.create(gae_lambda=2.0), compile=False)
    with pytest.raises(ValueError, match="num_updates"):
        funrl.train(algo, funrl.random.key(0), hp, compile=False, num_updates=0)


def test_evaluate_runs_one_episode_per_env():
    algo = ppo.make(TINY)
    state = algo.init(funrl.random.key(0), ppo.HParams.create())
    rets = funrl.evaluate(algo, state, funrl.random.key(1), num_episodes=4)
    assert rets.shape == (4,) and torch.isfinite(rets).all()
    assert (rets >= 1).all() and (rets <= 500).all()


def test_make_evaluate_compiled_matches_eager_and_compiles_once():
    from funrl.train import make_evaluate

    algo = ppo.make(TINY)
    state = algo.init(funrl.random.key(0), ppo.HParams.create())
    eager = make_evaluate(algo, num_episodes=3)
    compiled = make_evaluate(algo, num_episodes=3, compile=True)
    torch._dynamo.utils.counters.clear()
    for seed in (1, 2):
        key = funrl.random.key(seed)
        # CartPole returns are episode lengths: the same actions give exactly the same ones.
        torch.testing.assert_close(compiled(state, key), eager(state, key), rtol=0, atol=0)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    with pytest.raises(ValueError, match="num_episodes"):
        make_evaluate(algo, num_episodes=0)


def test_compiled_train_compiles_each_unit_once():
    # orthogonal init gives strided weights and compiled units return contiguous ones:
    # neither may cost a second compile
    torch._dynamo.utils.counters.clear()
    funrl.train(
        ppo.make(TINY), funrl.random.key(0), ppo.HParams.create(), progress=False,
        eval_every=1, eval_episodes=2,
    )  # fmt: skip
    # collect, prepare, learn, finish and the evaluation step
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 5


# ---- every feature in every mode ----------------------------------------------------------
# The same scenarios run through each entry point: one agent, a vmapped population, a
# population sharded over a world of one, data parallel in a world of one, and (in a
# torchrun worker: this file's __main__) sharded and data-parallel over 2 processes.

FEAT = ppo.Config(env="CartPole-v1", num_envs=2, num_steps=8, hidden=(16,), anneal_lr=False)
MODES = ["single", "population", "sharded", "data_parallel"]


def _train(mode: str, **kw):
    """``(result, state)`` of ``mode``'s entry point with the loop features in ``kw``
    (``(None, None)`` on ranks other than 0 of a sharded run)."""
    from funrl import distributed as D
    from funrl import population as pop

    algo, key, hp = ppo.make(FEAT), funrl.random.key(4), ppo.HParams.create()
    keys, hps = pop.member_keys(key, 2), pop.hparams(ppo.HParams, 2, lr=[1e-3, 3e-3])
    kw = dict(compile=False, eval_episodes=2, **kw)
    if mode == "single":
        r = funrl.train(algo, key, hp, **kw)
    elif mode == "population":
        r = pop.train(algo, keys, hps, **kw)
    elif mode == "sharded":
        r = D.train_population(algo, keys, hps, **kw)
    else:
        r = D.train_data_parallel(algo, key, hp, **kw)
    if r is None:
        return None, None
    return r, getattr(r, "state", None) if mode in ("single", "data_parallel") else r.states


def run_scenarios(mode: str, root) -> dict:
    """Every loop feature through ``mode``; what the checks need, as plain data."""
    from funrl import checkpoint

    root = Path(root)
    calls = []

    def record(i, state, row):
        ck = root / "a.pt"
        saved = checkpoint.load(ck).meta["updates"] if ck.is_file() else None
        calls.append((i, len(row) if isinstance(row, list) else "row", saved))

    feats = dict(out_dir=root / "a", checkpoint_path=root / "a.pt", checkpoint_every=2)
    seen = []  # a user hook, after the standard ones: every update, then once when done
    hooks = [lambda step: seen.append((step.update, step.done))]
    a, _ = _train(mode, num_updates=3, eval_every=2, callback=record, hooks=hooks, **feats)
    calls.append(seen)
    b, _ = _train(mode, num_updates=3, eval_every=1, target_return=-1.0, progress=False)
    c, _ = _train(mode, num_updates=3, callback=lambda i, s, r: i == 1, progress=False)
    _, straight = _train(mode, num_updates=4, progress=False)
    d, resumed = _train(mode, num_updates=4, resume=root / "a.pt", **feats)
    out = {"calls": calls, "straight": straight, "resumed": resumed}
    if a is not None:
        out.update(a=a.updates, b=(b.updates, b.reached_target_at), c=c.updates)
        out.update(d_first=d.history[0]["update"], d=d.updates)
    return out


def check_scenarios(
    res: dict, root, mode: str, size: int, steps: int, exact_resume: bool = True
) -> None:
    """The same expectations in every mode (``size`` agents, ``steps`` env steps each per
    update).  ``exact_resume=False``: resumed equals straight up to float rounding (a
    shard of one member: the resumed state's contiguous layout picks other vmapped
    kernels than the one vmap made, as across world sizes)."""
    from funrl import checkpoint

    root = Path(root)
    rows_per = size if mode in ("population", "sharded") else "row"
    # callback: every update, with the rows; the checkpoint of update 2 exists by update 3
    assert res["calls"][:3] == [(0, rows_per, None), (1, rows_per, None), (2, rows_per, 2)]
    assert res["calls"][3] == [(1, False), (2, False), (3, False), (3, True)]  # user hook
    assert res["a"] == 3 and res["c"] == 2  # the callback's True stopped after update 2
    assert res["b"] == (1, steps)  # target reached at the first evaluation
    ck = checkpoint.load(root / "a.pt")  # the resumed run's final checkpoint
    assert ck.meta["updates"] == 4 and ck.meta["mode"] == mode
    assert res["d_first"] == 4 and res["d"] == 4
    if exact_resume:
        assert tree.all_equal(res["resumed"], res["straight"])  # resuming is bit for bit
    else:
        assert_trees_close(res["resumed"], res["straight"], rtol=1e-5, atol=1e-6)
    rows = [json.loads(x) for x in (root / "a" / "metrics.jsonl").read_text().splitlines()]
    n = size if mode in ("population", "sharded") else 1
    assert [r["update"] for r in rows] == [u for u in (1, 2, 3, 4) for _ in range(n)]
    assert [("eval_return" in r) for r in rows[::n]] == [False, True, True, True]
    assert all(r["env_steps"] == r["update"] * steps for r in rows)
    header = (root / "a" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "eval_return" in header and len(rows) + 1 == len(
        (root / "a" / "metrics.csv").read_text().splitlines()
    )
    summary = json.loads((root / "a" / "summary.json").read_text())
    assert summary["updates"] == 4 and summary["mode"] == mode
    assert math.isfinite(summary["eval_return"])


@pytest.mark.parametrize("mode", MODES)
def test_every_feature_works_the_same_in_every_mode(mode, tmp_path, capsys):
    res = run_scenarios(mode, tmp_path)
    size = 2 if mode in ("population", "sharded") else 1
    check_scenarios(res, tmp_path, mode, size, FEAT.batch_size)
    assert f"ppo CartPole-v1 ({mode})" in capsys.readouterr().err  # the progress bar


def test_every_feature_works_the_same_on_two_processes(tmp_path):
    # One launch for both modes (a fixture would launch once per xdist worker).
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*cmd, __file__, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    for mode in ("sharded", "data_parallel"):
        size, steps = (2, FEAT.batch_size) if mode == "sharded" else (1, 2 * FEAT.batch_size)
        # a shard of one member resumes up to float rounding (see check_scenarios)
        exact = mode != "sharded"
        check_scenarios(res[0][mode], tmp_path / mode, mode, size, steps, exact_resume=exact)
        assert f"ppo CartPole-v1 ({mode})" in proc.stderr  # rank 0's progress bar
        calls = res[1][mode]["calls"]  # rank 1 calls back too, with every member's rows
        assert [c[:2] for c in calls[:3]] == [c[:2] for c in res[0][mode]["calls"][:3]]
    dp = [res[r]["data_parallel"] for r in (0, 1)]  # every rank holds the same agent
    assert tree.all_equal(dp[1]["resumed"].params, dp[0]["resumed"].params)
    assert tree.all_equal(dp[1]["resumed"], dp[1]["straight"])  # rank 1 resumes exactly too


def test_entry_points_take_the_same_features_with_the_same_defaults():
    import inspect

    from funrl import distributed as D
    from funrl import loop
    from funrl import population as pop

    for fn in (funrl.train, pop.train, D.train_population, D.train_data_parallel):
        params = inspect.signature(fn).parameters
        assert params["compile"].default is True, fn.__qualname__
        assert params["eval_episodes"].default == 10, fn.__qualname__
        # every loop feature, defaults from funrl.loop.run alone
        assert params["options"].kind is inspect.Parameter.VAR_KEYWORD, fn.__qualname__
        assert "Unpack[L.Options]" in str(params["options"].annotation), fn.__qualname__
    run = inspect.signature(loop.run).parameters
    assert set(loop.Options.__annotations__) <= set(run)
    assert run["progress"].default is True and run["eval_every"].default is None


def test_loop_rejects_bad_features_before_training():
    algo, hp = ppo.make(FEAT), ppo.HParams.create()
    kw = dict(compile=False, progress=False)
    for bad, message in (
        (dict(eval_every=0), "eval_every must be >= 1"),
        (dict(checkpoint_every=0), "checkpoint_every must be >= 1"),
        (dict(num_updates=0), "num_updates must be >= 1"),
    ):
        with pytest.raises(ValueError, match=message):
            funrl.train(algo, funrl.random.key(0), hp, **kw, **bad)
    with pytest.raises(TypeError, match="eval_evry"):
        funrl.train(algo, funrl.random.key(0), hp, eval_evry=2, **kw)  # type: ignore[call-arg]
    from funrl.train import single_runner

    runner = single_runner(algo, funrl.random.key(0), hp, compile=False, eval_episodes=1)
    with pytest.raises(ValueError, match="PBT needs a population, not a single run"):
        funrl.loop.run(runner, pbt=object())


def test_resume_refuses_another_modes_checkpoint(tmp_path):
    from funrl import checkpoint
    from funrl import distributed as D

    kw = dict(num_updates=1, progress=False)
    _train("population", checkpoint_path=tmp_path / "pop.pt", **kw)
    _train("single", checkpoint_path=tmp_path / "one.pt", **kw)
    with pytest.raises(checkpoint.CheckpointError, match="a population checkpoint, not one agent"):
        _train("single", resume=tmp_path / "pop.pt", **kw)
    for mode in ("population", "sharded"):
        with pytest.raises(checkpoint.CheckpointError, match="one agent's checkpoint, not a pop"):
            _train(mode, resume=tmp_path / "one.pt", **kw)
    with pytest.raises(checkpoint.CheckpointError, match="a population checkpoint, not a data"):
        _train("data_parallel", resume=tmp_path / "pop.pt", **kw)
    algo = ppo.make(FEAT)  # and a data-parallel run's ranks are not a population
    D.train_data_parallel(algo, funrl.random.key(0), ppo.HParams.create(), compile=False,
                          checkpoint_path=tmp_path / "dp.pt", **kw)  # fmt: skip
    with pytest.raises(checkpoint.CheckpointError, match="a data-parallel checkpoint, not a pop"):
        D.load_population(tmp_path / "dp.pt", algo)


def _worker(out: Path) -> None:
    from funrl import distributed as D

    torch.set_num_threads(1)
    r, w = D.init(timeout_s=120)
    assert w == 2
    res = {}
    for mode in ("sharded", "data_parallel"):
        (out / mode).mkdir(exist_ok=True)
        res[mode] = run_scenarios(mode, out / mode)
        torch.distributed.barrier()
    torch.save(res, out / f"rank{r}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    import sys

    _worker(Path(sys.argv[1]))


def test_evaluation_compiles_only_from_its_third_call():
    """A run that evaluates once or twice never pays for compiling the evaluation step;
    repeated evaluations compile it once, and give the same returns."""
    from funrl.compiling import compile_events
    from funrl.evaluation import make_evaluate

    algo = ppo.make(ppo.Config(num_envs=2, num_steps=8, hidden=(8,)))
    state = algo.init(funrl.random.key(0), ppo.HParams.create())
    ev = make_evaluate(algo, 3, compile=True, compile_after=2)
    plain = make_evaluate(algo, 3)
    seen = []
    with compile_events(lambda name, event, s: seen.append((name, event))):
        for i in range(4):
            key = funrl.random.key(i)
            assert torch.allclose(ev(state, key), plain(state, key), equal_nan=True)
            assert seen == (
                [] if i < 2 else [("evaluation step", "start"), ("evaluation step", "end")]
            )
    with pytest.raises(ValueError, match="compile_after must be >= 0"):
        make_evaluate(algo, 3, compile_after=-1)
