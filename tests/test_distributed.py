"""Tests of funrl.distributed: pure pieces in-process, collectives with 2 gloo processes.

The two-process tests run this file as a torchrun worker (``__main__`` below, one
launch for all scenarios; each rank saves what it computed) and compare the ranks'
results with single-process references here.  The fault tests kill or hang one rank
of ``python -m funrl.distributed`` and check that the job fails fast with a message.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import funrl
from funrl import distributed as D
from funrl import optim, tree
from funrl import population as pop
from funrl import random as R
from funrl.algos import a2c, ppo
from funrl.distributed import collectives
from funrl.testing import check_transforms
from funrl.train import split_key

TINY = ppo.Config(num_envs=2, num_steps=8, num_minibatches=2, update_epochs=2, hidden=(16,))
ROOT = Path(__file__).resolve().parents[1]

# PBT toy: P=7 on 2 ranks (0-3, 4-6); seed 5 copies members across ranks both ways and locally.
PBT_P, PBT_SEED = 7, 5
PBT_SCORES = torch.tensor([5.0, float("nan"), 2.0, 3.0, 1.0, 0.5, 4.0])
PBT_CFG = pop.PBTConfig(interval=1, fraction=0.43, perturb=("lr",))
# Population run: P=3 on 2 ranks (0-1, 2); PBT after update 2 of 3, resumed to 4 in-process.
POP_P, POP_CFG = 3, pop.PBTConfig(interval=2, fraction=0.34)


def _toy_states(p: int) -> dict[str, torch.Tensor]:
    k = R.key(1)
    return {
        "w": R.normal(R.fold_in(k, 0), (p, 3, 2)),
        "flag": R.bernoulli(R.fold_in(k, 1), 0.5, (p,)),
        "step": torch.arange(p, dtype=torch.int64) * 10,
        "s": R.normal(R.fold_in(k, 2), (p,), dtype=torch.float64),
    }


def _pbt_hps(p: int) -> ppo.HParams:
    return pop.hparams(ppo.HParams, p, lr=torch.linspace(1e-3, 7e-3, p))


def _pop_inputs() -> tuple[torch.Tensor, ppo.HParams]:
    return pop.member_keys(R.key(3), POP_P), pop.hparams(ppo.HParams, POP_P, lr=[1e-3, 3e-3, 1e-2])


# ---- in-process: shards, packing, world of one --------------------------------------------


def test_shard_bounds_hand_values_and_errors():
    assert [D.shard_bounds(5, r, 2) for r in range(2)] == [(0, 3), (3, 5)]
    assert [D.shard_bounds(7, r, 3) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    assert [D.shard_bounds(4, r, 4) for r in range(4)] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert D.shard_bounds(6) == (0, 6)  # no process group: a world of one
    with pytest.raises(ValueError, match="population size 1 < world size 2"):
        D.shard_bounds(1, 0, 2)
    with pytest.raises(ValueError, match="rank 2, world 2"):
        D.shard_bounds(5, 2, 2)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 65, 101])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shard_bounds_tile_the_population(size, world):
    world = min(world, size)  # every rank needs a member
    bounds = [D.shard_bounds(size, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))  # contiguous, no overlap
    sizes = [b - a for a, b in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_shard_slices_every_leaf():
    states = _toy_states(5)
    part = D.shard(states, 1, 2)
    assert tree.all_equal(part, tree.map(lambda x: x[3:5], states))


def test_pack_unpack_roundtrip_mixed_dtypes():
    leaves = [
        *tree.leaves(_toy_states(4)),
        torch.zeros(4, 0),
        torch.ones(4, 2, 2, dtype=torch.int32),
    ]
    bufs = collectives.pack_rows(leaves, 4)
    assert [b.dtype for b in bufs] == [
        torch.float32,
        torch.uint8,
        torch.int64,
        torch.float64,
        torch.int32,
    ]
    assert [tuple(b.shape) for b in bufs] == [(4, 6), (4, 1), (4, 1), (4, 1), (4, 4)]
    back = collectives.unpack_rows(bufs, leaves)
    assert all(a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(back, leaves))
    rows = collectives.unpack_rows(
        [b[[2, 0]] for b in bufs], leaves
    )  # row selection commutes with packing
    assert all(torch.equal(a, b[[2, 0]]) for a, b in zip(rows, leaves))


def test_world_of_one_collectives_are_identities():
    states = _toy_states(3)
    assert D.init() == (0, 1) and D.rank() == 0 and D.world_size() == 1
    assert D.gather(states, 3) is states and D.broadcast(states) is states
    assert D.all_reduce_mean(states) is states
    key = R.key(PBT_SEED)
    got = D.pbt_step(key, _toy_states(PBT_P), _pbt_hps(PBT_P), PBT_SCORES, PBT_CFG, PBT_P)
    want = pop.pbt_step(key, _toy_states(PBT_P), _pbt_hps(PBT_P), PBT_SCORES, PBT_CFG)
    assert tree.all_equal(got, want)
    with pytest.raises(ValueError, match="exchange must be"):
        D.pbt_step(key, states, _pbt_hps(3), PBT_SCORES[:3], PBT_CFG, 3, exchange="scatter")


def test_allreduce_grads_alone_is_the_wrapped_optimizer_under_vmap_and_compile():
    opt, ref = D.allreduce_grads(optim.sgd(0.1, momentum=0.9)), optim.sgd(0.1, momentum=0.9)
    k = R.split(R.key(0), 3)
    params = {"w": R.normal(k[0], (4, 3))}
    grads = {"w": R.normal(k[1], (4, 3))}
    state = tree.map(lambda x: torch.stack([x] * 4), opt.init({"w": torch.zeros(3)}))

    def step(g, s, p):
        return opt.update(g, s, p)

    out = check_transforms(step, grads, state, params)
    want = torch.func.vmap(ref.update)(grads, state, params)
    assert tree.allclose(out, want, rtol=0, atol=0)
    with pytest.raises(TypeError, match="GradientTransformation"):
        D.allreduce_grads(lambda g: g)  # type: ignore[arg-type]


def test_launch_command_and_argument_errors(capsys):
    cmd = D.launch_command(2, ["population", "ppo"])
    assert cmd[1:] == [
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=2",
        "--standalone",
        "-m",
        "funrl.distributed",
        "population",
        "ppo",
    ]
    multi = D.launch_command(4, ["dataparallel", "ppo"], nnodes=2, rdzv_endpoint="head:29500")
    assert (
        "--nnodes=2" in multi
        and "--rdzv-endpoint=head:29500" in multi
        and "--standalone" not in multi
    )
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        D.launch_command(2, [], nnodes=2)
    assert D.main(["population", "ppo", "--set", "num_env=3"]) == 2  # bad input: one line
    assert "unknown field 'num_env'" in capsys.readouterr().err


def test_main_population_in_a_world_of_one_writes_summary_and_checkpoint(tmp_path, capsys):
    args = [
        "population",
        "ppo",
        "--population",
        "3",
        "--updates",
        "4",
        "--quiet",
        "--no-compile",
        "--eval-episodes",
        "1",
        "--sample",
        "lr=1e-4:1e-2",
        "--pbt-interval",
        "2",
        "--out",
        str(tmp_path),
        "--checkpoint",
        str(tmp_path / "pop.pt"),
    ]
    args += [x for kv in ("num_envs=2", "num_steps=8", "hidden=16") for x in ("--set", kv)]
    assert D.main(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (
        summary["world_size"] == 1 and summary["updates"] == 4 and len(summary["eval_returns"]) == 3
    )
    assert summary["env_steps_per_update"] == 3 * 16 and summary["steady_steps_per_s"] > 0
    _members, hps, update = D.load_population(
        tmp_path / "pop.pt", ppo.make(ppo.Config(num_envs=2, num_steps=8, hidden=(16,)))
    )
    lrs = pop.sample(ppo.HParams, R.fold_in(R.key(0), 1), 3, lr=("log_uniform", 1e-4, 1e-2)).lr
    assert update == 4 and hps.lr.shape == (3,) and not torch.equal(hps.lr, lrs)  # PBT perturbed
    assert "rank member" in capsys.readouterr().out  # the ranking table


def test_world_of_one_population_matches_population_train_and_resumes(tmp_path):
    keys, hps = _pop_inputs()
    kw = dict(compile=False, progress=False, eval_episodes=2, pbt=POP_CFG)
    algo = ppo.make(TINY)
    ref = pop.train(algo, keys, hps, num_updates=3, **kw)
    got = D.train_population(
        algo,
        keys,
        hps,
        num_updates=3,
        checkpoint_path=tmp_path / "c.pt",
        checkpoint_every=2,
        out_dir=tmp_path,
        **kw,
    )
    assert got is not None and tree.all_equal(got.states, ref.states)
    assert tree.all_equal(got.hparams, ref.hparams) and torch.equal(
        got.eval_returns, ref.eval_returns
    )
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["update"], r["member"]) for r in rows] == [
        (u, i) for u in (1, 2, 3) for i in range(3)
    ]
    assert rows[0]["loss"] == pytest.approx(ref.history[0]["loss"])
    members, saved_hps, update = D.load_population(tmp_path / "c.pt", algo)
    assert update == 3 and tree.all_equal(members["states"], ref.states)
    assert tree.all_equal(saved_hps, ref.hparams) and torch.equal(members["keys"], keys)


def _metrics(history: list[dict]) -> str:
    """The rows without their clocks, as text (NaN == NaN)."""
    return json.dumps(
        [{k: v for k, v in r.items() if k not in ("update_s", "time_s")} for r in history]
    )


def test_data_parallel_in_a_world_of_one_is_funrl_train():
    # rank 0 initialises from k_init as funrl.train does; allreduce_grads over one rank is
    # the algorithm's own optimizer: the same agent, bit for bit, with the same history
    kw = dict(num_updates=2, compile=False, progress=False, eval_episodes=2, eval_every=1)
    for name in ("ppo", "a2c"):
        mod = {"ppo": ppo, "a2c": a2c}[name]
        algo, hp = mod.make(mod.Config(num_envs=2, num_steps=8, hidden=(16,))), mod.HParams.create()
        alone = funrl.train(algo, R.key(5), hp, **kw)
        dp = D.train_data_parallel(algo, R.key(5), hp, **kw)
        assert tree.all_equal(dp.state, alone.state), name
        assert dp.eval_return == alone.eval_return, name
        assert _metrics(dp.history) == _metrics(alone.history), name


def test_data_parallel_wraps_the_algorithms_own_optimizer_or_says_why_not():
    algo = ppo.make(TINY)
    dp = D.data_parallel(algo)
    assert dp.name == "ppo" and dp.optimizer is not algo.optimizer
    p = {"w": torch.ones(2)}  # the wrapped optimizer is ppo's own (a world of one here)
    state = algo.optimizer.init(p)
    got = dp.optimizer.update({"w": torch.ones(2)}, state, p)
    assert tree.all_equal(got, algo.optimizer.update({"w": torch.ones(2)}, state, p))
    per_network = algo._replace(
        name="twin", optimizer={"actor": algo.optimizer, "critic": algo.optimizer}
    )
    with pytest.raises(
        ValueError,
        match=r"^twin cannot run data-parallel: it has one optimizer per network \(actor, critic\)",
    ):
        D.data_parallel(per_network)
    fixed = algo._replace(
        name="fixed",
        remake=lambda **parts: (_ for _ in ()).throw(
            TypeError("remake: unknown part(s) ['optimizer']")
        ),
    )
    with pytest.raises(
        ValueError, match=r"^fixed cannot run data-parallel: its make takes no optimizer part"
    ):
        D.data_parallel(fixed)
    with pytest.raises(ValueError, match="twin cannot run data-parallel"):  # before training
        D.train_data_parallel(per_network, R.key(0), ppo.HParams.create(), progress=False)


# ---- two gloo processes ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _torchrun(
    args: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _node_command(args: list[str], port: int, run_id: str) -> list[str]:
    """One node of a two-node torchrun job: c10d rendezvous on localhost, one rank each."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        f"--rdzv-id={run_id}",
        "--max-restarts=0",
        *args,
    ]


def _start_nodes(args: list[str], env: dict[str, str], log_dir: Path) -> list[subprocess.Popen]:
    """Two torchrun launches (as on two machines), each in its own session so that a
    test can kill one node whole (agent and worker); logs in ``log_dir/node{i}.log``."""
    port, run_id = _free_port(), f"funrl-test-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    nodes = []
    for i in range(2):
        log = open(log_dir / f"node{i}.log", "w")
        nodes.append(
            subprocess.Popen(
                _node_command(args, port, run_id),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        log.close()
    return nodes


def _process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux ``/proc``).  torchrun starts each worker in a
    session of its own, so killing the agent's process group would leave the worker
    running: killing a node means killing this whole tree."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree_, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree_.append(p)
        todo.extend(children.get(p, []))
    return tree_


def _kill_node(node: subprocess.Popen) -> None:
    for pid in _process_tree(node.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    node.wait()


def _wait_nodes(nodes: list[subprocess.Popen], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        return [n.wait(timeout=max(0.1, deadline - time.monotonic())) for n in nodes]
    finally:
        for n in nodes:
            if n.poll() is None:
                _kill_node(n)


@pytest.fixture(scope="module", params=["standalone", "two-nodes"])
def two_ranks(request, tmp_path_factory):
    """Run every two-process scenario once per launch: ``torchrun --standalone`` with two
    ranks, and two ``torchrun --nnodes 2`` launches meeting at a c10d rendezvous on
    localhost (how a job spans machines); returns (out dir, [rank 0, rank 1 results])."""
    out = tmp_path_factory.mktemp("dist")
    if request.param == "standalone":
        proc = _torchrun([__file__, str(out)], {}, timeout=240)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    else:
        codes = _wait_nodes(_start_nodes([__file__, str(out)], {}, out), timeout=240)
        logs = "".join((out / f"node{i}.log").read_text()[-3000:] for i in range(2))
        assert codes == [0, 0], logs
    return out, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


def test_two_ranks_gather_and_broadcast(two_ranks):
    _, res = two_ranks
    full = _toy_states(5)
    for r in range(2):
        assert tree.all_equal(res[r]["gather_all"], full)
        assert res[r]["bcast"]["x"].tolist() == [0.0, 0.0, 0.0]
        assert res[r]["bcast"]["m"].tolist() == [True, False]
    assert tree.all_equal(res[0]["gather_dst"], full) and res[1]["gather_dst"] is None


def test_two_ranks_allreduce_averages_gradients(two_ranks):
    _, res = two_ranks
    for r in range(2):  # grads 1 and 2 on the two ranks; SGD(lr=1) steps by -mean = -1.5
        assert res[r]["ar_update"]["w"].tolist() == [-1.5, -1.5]
        assert res[r]["ar_mixed"]["i"].dtype == torch.float64
        assert res[r]["ar_mixed"]["i"].tolist() == [0.5] and res[r]["ar_mixed"]["f"].tolist() == [
            [1.5]
        ]


@pytest.mark.parametrize("exchange", ["broadcast", "all_gather"])
def test_two_ranks_pbt_equals_whole_population_pbt(two_ranks, exchange):
    _, res = two_ranks
    want_states, want_hps, want_src = pop.pbt_step(
        R.key(PBT_SEED), _toy_states(PBT_P), _pbt_hps(PBT_P), PBT_SCORES, PBT_CFG
    )
    owner = [0 if i < 4 else 1 for i in range(PBT_P)]
    moves = {(owner[s], owner[i]) for i, s in enumerate(want_src.tolist()) if s != i}
    assert moves == {(0, 1), (1, 0), (1, 1)}  # the scenario really crosses ranks both ways
    parts = [res[r][f"pbt_{exchange}"] for r in range(2)]
    assert all(torch.equal(p[2], want_src) for p in parts)
    assert tree.all_equal(
        tree.map(lambda a, b: torch.cat([a, b]), parts[0][0], parts[1][0]), want_states
    )
    assert tree.all_equal(
        tree.map(lambda a, b: torch.cat([a, b]), parts[0][1], parts[1][1]), want_hps
    )


def test_two_ranks_data_parallel_keeps_params_identical(two_ranks):
    _, res = two_ranks
    a, b = res[0]["dp"], res[1]["dp"]
    assert tree.all_equal(a["params"], b["params"])  # broadcast at init + averaged grads
    assert tree.all_equal(a["opt_state"], b["opt_state"])
    assert not torch.equal(a["obs"], b["obs"])  # each rank runs its own envs and keys
    assert not tree.all_equal(a["params"], a["init_params"])  # and training moved them
    assert a["env_steps"] == 3 * 2 * TINY.batch_size and len(a["history"]) == 3
    for r in range(2):
        assert "differ across ranks after update 1" in res[r]["dp_plain"], res[r]["dp_plain"]


def test_two_ranks_population_matches_one_process_and_resumes_on_one(two_ranks, tmp_path):
    out, res = two_ranks
    keys, hps = _pop_inputs()
    algo = ppo.make(TINY)
    kw = dict(compile=False, progress=False, eval_episodes=2, pbt=POP_CFG)
    ref3 = pop.train(algo, keys, hps, num_updates=3, **kw)
    got = res[0]["pop"]
    assert res[1]["pop"] is None
    assert tree.allclose(got["states"], ref3.states, rtol=1e-5, atol=1e-6)
    assert tree.all_equal(got["hps"], ref3.hparams) and torch.equal(got["eval"], ref3.eval_returns)
    assert got["rows"] == 3 * POP_P
    ref4 = pop.train(algo, keys, hps, num_updates=4, **kw)  # resume the 2-rank checkpoint here
    resumed = D.train_population(algo, keys, hps, num_updates=4, resume=out / "pop.pt", **kw)
    assert resumed is not None and resumed.history[0]["update"] == 4
    assert tree.allclose(resumed.states, ref4.states, rtol=1e-5, atol=1e-6)
    assert tree.all_equal(resumed.hparams, ref4.hparams)


# ---- faults --------------------------------------------------------------------------------------

_FAULT_ARGS = [
    "-m",
    "funrl.distributed",
    "dataparallel",
    "ppo",
    "--updates",
    "50",
    "--quiet",
    "--no-compile",
    "--set",
    "num_envs=2",
    "--set",
    "num_steps=8",
    "--set",
    "num_minibatches=1",
    "--set",
    "update_epochs=1",
]


@pytest.mark.parametrize("fault,timeout", [("1:1", 30), ("1:1:hang", 4)])
def test_a_dead_or_hung_rank_fails_the_job_fast_with_a_message(fault, timeout):
    t0 = time.monotonic()
    proc = _torchrun([*_FAULT_ARGS, "--timeout", str(timeout)], {D.FAULT_ENV: fault}, timeout=120)
    elapsed = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert elapsed < 90, f"took {elapsed:.0f} s"
    assert f"rank 1: fault injection ({D.FAULT_ENV}={fault})" in log
    assert "ChildFailedError" in log  # torchrun's failure summary
    if fault.endswith("hang"):  # rank 0's collective timed out: its message ends the job
        assert "funrl.distributed: rank 0 of 2 failed" in log and "Timed out" in log, log[-3000:]
    else:  # torchrun names the dead rank as the root cause (rank 0 may be stopped first)
        root = log[log.index("Root Cause") :]
        assert "rank      : 1" in root and "exitcode  : 3" in root, root


_TINY_RUN = ["--seed", "3", "--quiet", "--no-compile", "--set", "num_envs=2",
             "--set", "num_steps=8", "--set", "update_epochs=1"]  # fmt: skip
_POP_ARGS = [
    *("-m", "funrl.distributed", "population", "ppo"),
    *("--population", "4", "--pbt-interval", "2"),
    *_TINY_RUN,
]


def _one_process(args: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


_DP_ARGS = ["-m", "funrl.distributed", "dataparallel", "ppo", *_TINY_RUN]


@pytest.mark.parametrize("mode,killed", [("population", 0), ("population", 1), ("dataparallel", 1)])
def test_a_killed_node_fails_the_survivor_fast_and_the_run_resumes(tmp_path, mode, killed):
    """Two torchrun nodes train (a PBT population, or one agent data-parallel) with a
    checkpoint every update; one node is killed whole (agent and worker, SIGKILL) mid-run
    (the first node to reach the rendezvous usually holds rank 0, which writes the
    checkpoints).  The survivor fails fast with a message naming its rank, and the run
    resumes from its last checkpoint (a population in a world of one, data-parallel on two
    ranks again) to the same result as a run that was never interrupted."""
    population = mode == "population"
    base, rows_per_update = (_POP_ARGS, 4) if population else (_DP_ARGS, 1)
    run = tmp_path / "run"
    args = [*base, "--out", str(run), "--checkpoint-every", "1"]
    nodes = _start_nodes([*args, "--updates", "100000"], {}, tmp_path)
    try:
        metrics, deadline = run / "metrics.jsonl", time.monotonic() + 120
        while not (
            metrics.is_file() and len(metrics.read_text().splitlines()) >= 3 * rows_per_update
        ):
            assert all(n.poll() is None for n in nodes), (tmp_path / "node0.log").read_text()
            assert time.monotonic() < deadline, "the two nodes never trained 3 updates"
            time.sleep(0.1)
        _kill_node(nodes[killed])
        t_kill = time.monotonic()
        code = nodes[1 - killed].wait(timeout=90)
        waited = time.monotonic() - t_kill
    finally:
        for n in nodes:
            if n.poll() is None:
                _kill_node(n)
    log = (tmp_path / f"node{1 - killed}.log").read_text()
    assert code != 0, log[-3000:]
    assert waited < 30, f"the survivor took {waited:.0f} s to fail"
    assert re.search(r"funrl\.distributed: rank [01] of 2 failed", log), log[-3000:]
    done = int(funrl.checkpoint.read_meta(run / "checkpoint.pt")["updates"])
    assert done >= 2
    ref = tmp_path / "ref"
    if population:
        _one_process([*args, "--updates", str(done + 2), "--resume", "auto"])
        _one_process([*base, "--out", str(ref), "--updates", str(done + 2)])
    else:
        for cmd in (
            [*args, "--updates", str(done + 2), "--resume", "auto"],
            [*base, "--out", str(ref), "--checkpoint-every", "1", "--updates", str(done + 2)],
        ):
            proc = _torchrun(cmd, {}, timeout=120)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert rows[-1]["update"] == done + 2
    algo = ppo.make(ppo.Config.preset("CartPole-v1", num_envs=2, num_steps=8, update_epochs=1))
    got = pop.load_members(run / "checkpoint.pt", algo, data_parallel=not population)
    want = pop.load_members(ref / "checkpoint.pt", algo, data_parallel=not population)
    assert got.meta["updates"] == want.meta["updates"] == done + 2
    assert tree.allclose(got.state, want.state, rtol=1e-5, atol=1e-6)
    assert tree.all_equal(got.hparams, want.hparams)


# ---- the worker: python -m torch.distributed.run --nproc-per-node=2 tests/test_distributed.py OUT ---


def _worker(out: Path) -> None:
    torch.set_num_threads(1)
    r, w = D.init(timeout_s=60)
    assert w == 2
    res: dict[str, object] = {}
    full = _toy_states(5)
    res["gather_all"] = D.gather(D.shard(full), 5)
    res["gather_dst"] = D.gather(D.shard(full), 5, dst=0)
    res["bcast"] = D.broadcast(
        {"x": torch.full((3,), float(r)), "m": torch.tensor([r == 0, r == 1])}
    )
    opt, p = D.allreduce_grads(optim.sgd(1.0)), {"w": torch.zeros(2)}
    res["ar_update"] = opt.update({"w": torch.full((2,), float(r + 1))}, opt.init(p), p)[0]
    res["ar_mixed"] = D.all_reduce_mean(
        {"i": torch.tensor([float(r)], dtype=torch.float64), "f": torch.full((1, 1), float(r + 1))}
    )
    lo, hi = D.shard_bounds(PBT_P)
    for mode in ("broadcast", "all_gather"):
        res[f"pbt_{mode}"] = D.pbt_step(
            R.key(PBT_SEED),
            D.shard(_toy_states(PBT_P)),
            D.shard(_pbt_hps(PBT_P)),
            PBT_SCORES[lo:hi],
            PBT_CFG,
            PBT_P,
            exchange=mode,
        )
    key, hp = R.key(7), ppo.HParams.create()
    kw = dict(num_updates=3, compile=False, progress=False, eval_episodes=2)
    dres = D.train_data_parallel(ppo.make(TINY), key, hp, **kw)  # wraps ppo's own optimizer
    res["dp"] = {
        "params": dres.state.params,
        "opt_state": dres.state.opt_state,
        "obs": dres.state.collector.obs,
        "env_steps": dres.env_steps,
        "history": dres.history,
        "eval_return": dres.eval_return,
        "init_params": ppo.make(TINY).init(split_key(key)[0], hp).params,
    }
    plain = ppo.make(TINY)  # an algorithm that drops the optimizer it is given: ranks drift
    try:
        D.train_data_parallel(plain._replace(remake=lambda **parts: plain), key, hp, **kw)
        res["dp_plain"] = "no error"
    except RuntimeError as e:
        res["dp_plain"] = str(e)
    keys, hps = _pop_inputs()
    presult = D.train_population(
        ppo.make(TINY),
        keys,
        hps,
        num_updates=3,
        compile=False,
        pbt=POP_CFG,
        progress=False,
        eval_episodes=2,
        checkpoint_path=out / "pop.pt",
    )
    res["pop"] = (
        None
        if presult is None
        else {
            "states": presult.states,
            "hps": presult.hparams,
            "eval": presult.eval_returns,
            "rows": len(presult.history),
        }
    )
    torch.save(res, out / f"rank{r}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
