"""Aliases against torch.optim over 120 steps, hyperparameters in the state, populations."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch._dynamo
import torch._dynamo.config

import funrl.random as R
from funrl import optim, tree
from funrl.testing import check_transforms

STEPS = 100
TOL = {torch.float64: dict(rtol=1e-12, atol=1e-13), torch.float32: dict(rtol=1e-5, atol=1e-6)}


def problem(dtype: torch.dtype, seed: int = 0) -> tuple[dict[str, torch.Tensor], Any]:
    """Params of several shapes (incl. 0-d) and a smooth MLP-plus-quadratic loss."""
    ks = R.split(R.key(seed), 7)
    p = {
        "w1": R.normal(ks[0], (4, 8)) * 0.5,
        "b1": R.normal(ks[1], (8,)) * 0.1,
        "w2": R.normal(ks[2], (8, 3)) * 0.5,
        "b2": R.normal(ks[3], (1, 3)),
        "s": R.normal(ks[4], ()) + 1.0,
    }
    p = tree.cast(p, dtype)
    x = R.normal(ks[5], (16, 4)).to(dtype)
    y = R.normal(ks[6], (16, 3)).to(dtype)

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        h = torch.tanh(x @ p["w1"] + p["b1"])
        out = (h @ p["w2"] + p["b2"]) * p["s"]
        quad = sum(0.5 * (v - 0.3).square().sum() for v in p.values())
        return (out - y).square().mean() + 0.1 * quad

    return p, loss


def run_both(ours: optim.GradientTransformation, theirs: Any, kw: dict, dtype: torch.dtype):
    params, loss = problem(dtype)
    grad = torch.func.grad(loss)
    tparams = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    topt = theirs(list(tparams.values()), **kw)
    state = ours.init(params)
    for _ in range(STEPS):
        g = grad({k: v.detach() for k, v in tparams.items()})
        for k, v in tparams.items():
            v.grad = g[k]
        topt.step()
        updates, state = ours.update(grad(params), state, params)
        params = optim.apply_updates(params, updates)
    return params, {k: v.detach() for k, v in tparams.items()}, state


def assert_close(ours: dict, ref: dict, dtype: torch.dtype) -> None:
    for k in ref:
        assert ours[k].dtype == dtype
        torch.testing.assert_close(ours[k], ref[k], **TOL[dtype], msg=lambda m, k=k: f"{k}: {m}")


DTYPES = [torch.float64, torch.float32]
# The per-leaf path (used under vmap/compile) is checked against the foreach path below.
FOREACH = [None]

SGD = [
    dict(lr=0.05),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.1),
    dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.01),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", SGD)
@pytest.mark.parametrize("foreach", FOREACH)
def test_sgd_matches_torch(kw: dict, dtype: torch.dtype, foreach: bool | None) -> None:
    ours, ref, _ = run_both(optim.sgd(**kw, foreach=foreach), torch.optim.SGD, kw, dtype)
    assert_close(ours, ref, dtype)


ADAM = [
    dict(lr=0.01),
    dict(lr=0.03, b1=0.8, b2=0.99, eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, b1=0.5, b2=0.9, eps=1e-3, weight_decay=0.05),
]


# Settings whose dynamics amplify a 1-ulp difference (e.g. b1=0 near a minimum, measured
# with torch alone: 1 ulp in the initial params -> 1e-5 after 120 steps) cannot be compared
# at tight tolerances with any reimplementation; the settings here are not chaotic.
ADAMW_EXTRA = dict(lr=0.02, b1=0.8, b2=0.95, eps=1e-4, weight_decay=0.2)


def _torch_adam_kw(kw: dict) -> dict:
    kw = dict(kw)
    kw["betas"] = (kw.pop("b1", 0.9), kw.pop("b2", 0.999))
    return kw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", ADAM)
@pytest.mark.parametrize("foreach", FOREACH)
def test_adam_matches_torch(kw: dict, dtype: torch.dtype, foreach: bool | None) -> None:
    tkw = _torch_adam_kw(kw)
    ours, ref, _ = run_both(optim.adam(**kw, foreach=foreach), torch.optim.Adam, tkw, dtype)
    assert_close(ours, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [*ADAM[:2], dict(lr=0.01, weight_decay=0.5), ADAMW_EXTRA])
@pytest.mark.parametrize("foreach", FOREACH)
def test_adamw_matches_torch(kw: dict, dtype: torch.dtype, foreach: bool | None) -> None:
    kw = {"weight_decay": 0.01, **kw}
    tkw = _torch_adam_kw(kw)
    ours, ref, _ = run_both(optim.adamw(**kw, foreach=foreach), torch.optim.AdamW, tkw, dtype)
    assert_close(ours, ref, dtype)


RMS = [
    dict(lr=0.01),
    dict(lr=0.01, alpha=0.9, eps=1e-6, momentum=0.9),
    dict(lr=0.003, centered=True),
    dict(lr=0.003, centered=True, momentum=0.5, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.01, eps=1e-4),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", RMS)
@pytest.mark.parametrize("foreach", FOREACH)
def test_rmsprop_matches_torch(kw: dict, dtype: torch.dtype, foreach: bool | None) -> None:
    ours, ref, _ = run_both(optim.rmsprop(**kw, foreach=foreach), torch.optim.RMSprop, kw, dtype)
    assert_close(ours, ref, dtype)


ALIASES = {
    "sgd": lambda fe: optim.sgd(0.05, momentum=0.9, nesterov=True, weight_decay=0.1, foreach=fe),
    "sgd_damp": lambda fe: optim.sgd(0.05, momentum=0.5, dampening=0.3, foreach=fe),
    "adam": lambda fe: optim.adam(0.01, weight_decay=0.1, foreach=fe),
    "adamw": lambda fe: optim.adamw(0.01, foreach=fe),
    "rmsprop": lambda fe: optim.rmsprop(0.01, momentum=0.9, centered=True, foreach=fe),
}


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_foreach_and_per_leaf_paths_are_bitwise_equal(name: str) -> None:
    params, loss = problem(torch.float32)
    grad = torch.func.grad(loss)
    out = []
    for fe in (True, False):
        opt = ALIASES[name](fe)
        p, state = params, opt.init(params)
        for _ in range(5):
            u, state = opt.update(grad(p), state, p)
            p = optim.apply_updates(p, u)
        out.append((p, state))
    assert tree.all_equal(out[0][0], out[1][0])
    assert tree.all_equal(out[0][1], out[1][1])


def test_lr_schedule_matches_torch_lambda_lr() -> None:
    dtype = torch.float64
    sched = optim.warmup_cosine_decay_schedule(0.0, 0.05, 10, 80, 0.001)
    params, loss = problem(dtype)
    grad = torch.func.grad(loss)
    tparams = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    topt = torch.optim.Adam(list(tparams.values()), lr=1.0)
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, lambda t: float(sched(torch.tensor(t))))
    opt = optim.adam(sched)
    state = opt.init(params)
    for _ in range(STEPS):
        g = grad({k: v.detach() for k, v in tparams.items()})
        for k, v in tparams.items():
            v.grad = g[k]
        topt.step()
        tsched.step()
        updates, state = opt.update(grad(params), state, params)
        params = optim.apply_updates(params, updates)
    assert_close(params, {k: v.detach() for k, v in tparams.items()}, dtype)
    # the record shows the lr used by the last update (count STEPS - 1)
    assert float(optim.hparams(state)["lr"]) == float(sched(torch.tensor(STEPS - 1)))
    with pytest.raises(ValueError, match="schedule"):
        optim.set_hparams(state, lr=0.1)


# ------------------------------------------------------------------ hyperparameters API


def test_hparams_names_and_values() -> None:
    params, _ = problem(torch.float32)
    state = optim.rmsprop(0.01, momentum=0.9).init(params)
    hp = optim.hparams(state)
    assert sorted(hp) == ["alpha", "eps", "lr", "momentum", "weight_decay"]
    assert all(v.shape == () and v.dtype == torch.float64 for v in hp.values())
    assert float(hp["lr"]) == 0.01 and float(hp["momentum"]) == 0.9
    state2 = optim.set_hparams(state, lr=0.5, momentum=torch.tensor(0.1, dtype=torch.float64))
    assert float(optim.hparams(state2)["lr"]) == 0.5
    assert float(optim.hparams(state2)["momentum"]) == 0.1
    assert float(optim.hparams(state)["lr"]) == 0.01  # the old state is unchanged
    assert tree.structure(state2) == tree.structure(state)


def test_chain_merges_records_and_rejects_duplicates() -> None:
    params, _ = problem(torch.float32)
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-3))
    state = opt.init(params)
    assert sorted(optim.hparams(state)) == ["b1", "b2", "eps", "lr", "max_norm", "weight_decay"]
    state = optim.set_hparams(state, max_norm=0.5, lr=2e-3)
    assert float(optim.hparams(state)["max_norm"]) == 0.5
    dup = optim.chain(optim.adam(1e-3), optim.sgd(0.1)).init(params)
    with pytest.raises(ValueError, match="more than one"):
        optim.hparams(dup)
    with pytest.raises(ValueError, match="ambiguous"):
        optim.set_hparams(dup, lr=0.1)
    optim.set_hparams(dup, b1=0.8)  # unique names still work


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(lr=-1e-3), "'lr' = -0.001"),
        (dict(eps=-1.0), "'eps'"),
        (dict(b1=1.0), r"'b1' = 1.0 is outside \[0.0, 1.0\)"),
        (dict(b2=-0.1), "'b2'"),
        (dict(weight_decay=float("nan")), "'weight_decay'"),
    ],
)
def test_bad_hparams_raise_at_construction_and_in_set_hparams(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        optim.adam(**kwargs)
    state = optim.adam().init({"w": torch.zeros(2)})
    with pytest.raises(ValueError, match=match):
        optim.set_hparams(state, **kwargs)


def test_set_hparams_errors() -> None:
    state = optim.sgd(0.1, momentum=0.9).init({"w": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'learning_rate'.*'lr'"):
        optim.set_hparams(state, learning_rate=0.1)
    with pytest.raises(ValueError, match="broadcastable"):
        optim.set_hparams(state, lr=torch.ones(3))
    with pytest.raises(ValueError, match=r"'momentum'"):
        optim.set_hparams(state, momentum=-0.5)
    with pytest.raises(ValueError, match="nesterov"):
        optim.sgd(0.1, nesterov=True)
    with pytest.raises(ValueError, match="nesterov"):
        optim.sgd(0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(TypeError, match="'lr'"):
        optim.sgd("0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="params=None"):
        opt = optim.adamw(1e-3)
        opt.update({"w": torch.ones(2)}, opt.init({"w": torch.zeros(2)}))


# ------------------------------------------------------------ populations and compile


def small_problem() -> tuple[dict[str, torch.Tensor], Any]:
    """Two leaves (a matrix and a 0-d scale): keeps compile times small."""
    k1, k2, k3 = R.split(R.key(1), 3)
    params = {"w": R.normal(k1, (3, 2)), "s": torch.tensor(1.5)}
    x, y = R.normal(k2, (8, 3)), R.normal(k3, (8, 2))

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return (torch.tanh(x @ p["w"]) * p["s"] - y).square().mean()

    return params, loss


def _population(opt: optim.GradientTransformation, lrs: list[float]):
    params, loss = small_problem()
    n = len(lrs)
    pop_params = tree.map(lambda x: torch.stack([x * (1 + 0.1 * i) for i in range(n)]), params)
    states = tree.stack([optim.set_hparams(opt.init(params), lr=lr) for lr in lrs])
    grads = torch.func.vmap(torch.func.grad(loss))(pop_params)
    return pop_params, states, grads


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_population_step_through_battery(name: str) -> None:
    """vmap over opt states with different lrs (batched hparams); eager == vmap (== compile
    for adam: compiling every alias would cost ~10 s each on this CPU)."""
    opt = ALIASES[name](None)
    lrs = [1e-3, 1e-2, 3e-2]
    params, states, grads = _population(opt, lrs)

    def step(grads, state, params):
        u, state = opt.update(grads, state, params)
        return optim.apply_updates(params, u), state

    # a second step so moments, counts and bias corrections are all exercised
    p1, s1 = torch.func.vmap(step)(grads, states, params)
    out = check_transforms(step, grads, s1, p1, members=1, compile=name == "adam")
    assert torch.equal(out[1].hparams["lr"], torch.tensor(lrs, dtype=torch.float64))
    assert torch.equal(out[1].count, torch.full((3,), 2))
    # member i alone (eager, unbatched) equals member i of the population
    for i in range(3):
        alone = step(*tree.index((grads, s1, p1), i))
        assert tree.allclose(alone[0], tree.index(out[0], i), rtol=1e-6, atol=1e-7)


def test_changing_hparams_does_not_recompile() -> None:
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-3, weight_decay=0.01))
    params, loss = small_problem()
    grads = torch.func.grad(loss)(params)
    state = opt.init(params)

    def step(grads, state, params):
        u, state = opt.update(grads, state, params)
        return optim.apply_updates(params, u), state

    torch._dynamo.reset()
    cstep = torch.compile(step, fullgraph=True, dynamic=False)
    p1, s1 = cstep(grads, state, params)
    with torch._dynamo.config.patch(error_on_recompile=True):
        s_new = optim.set_hparams(s1, lr=0.05, b1=0.5, b2=0.9, eps=1e-3, max_norm=0.1)
        s_new = optim.set_hparams(s_new, weight_decay=0.2)
        p2, _ = cstep(grads, s_new, p1)
        p2_slow, _ = cstep(grads, s1, p1)  # the unchanged values, same graph
    expected, _ = step(grads, s_new, p1)
    for k in p2:
        torch.testing.assert_close(p2[k], expected[k], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(p2["w"], p2_slow["w"])  # the new lr took effect
