import collections
import os
import zipfile
from typing import NamedTuple

import pytest
import torch

import funrl
from funrl import checkpoint as C
from funrl import population as pop
from funrl import tree
from funrl.algos import a2c, ppo, units


@tree.struct
class Inner:
    w: torch.Tensor
    name: str = tree.field(static=True, default="inner")
    sizes: tuple = tree.field(static=True, default=(1, 2))
    dtype: torch.dtype = tree.field(static=True, default=torch.float32)


class Pair(NamedTuple):
    a: torch.Tensor
    b: object


def _tiny(**kw):
    cfg = dict(
        env="CartPole-v1",
        num_envs=2,
        num_steps=8,
        num_minibatches=2,
        update_epochs=1,
        hidden=(8,),
        total_timesteps=64,
    )
    cfg.update(kw)
    return ppo.make(ppo.Config(**cfg))


def _zoo():
    return {
        "inner": Inner(
            torch.arange(6, dtype=torch.float32).reshape(2, 3),
            name="x",
            sizes=(3, 4),
            dtype=torch.int8,
        ),
        "pair": Pair(torch.tensor([True, False]), None),
        "list": [torch.tensor(1, dtype=torch.int64), torch.ones(2, dtype=torch.bfloat16)],
        3: collections.OrderedDict(z=torch.tensor([1 + 2j], dtype=torch.complex64)),
        "count": 7,
        "key": funrl.random.key(5),
    }


def test_round_trip_keeps_classes_static_fields_and_bits(tmp_path):
    zoo = _zoo()
    path = C.save(tmp_path / "z.pt", zoo, meta={"note": "hi", "n": [1, 2]})
    ck = C.load(path, like=zoo)
    assert tree.structure(ck.state) == tree.structure(zoo)
    for x, y in zip(tree.leaves(ck.state), tree.leaves(zoo), strict=True):
        same = x.dtype == y.dtype and torch.equal(x, y) if isinstance(y, torch.Tensor) else x == y
        assert same, (x, y)
    assert isinstance(ck.state["inner"], Inner) and ck.state["inner"].sizes == (3, 4)
    assert ck.state["inner"].dtype is torch.int8
    assert isinstance(ck.state["pair"], Pair) and ck.state["pair"].b is None
    assert ck.state["count"] == 7 and ck.config is None and ck.hparams is None
    assert ck.meta["note"] == "hi" and ck.meta["versions"]["torch"] == torch.__version__
    assert ck.meta["versions"]["funrl"] == funrl.__version__


def test_file_loads_with_weights_only(tmp_path):
    algo = _tiny()
    hp = ppo.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    path = C.save(tmp_path / "s.pt", state, algo=algo, hparams=hp)
    raw = torch.load(path, weights_only=True)  # no arbitrary unpickling needed
    assert raw["format"] == "funrl.checkpoint"
    ck = C.load(path, algo=algo)
    assert ck.config == algo.config and ck.meta["algo"] == "ppo"
    assert tree.all_equal(ck.hparams, hp)


def test_crash_during_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = C.save(tmp_path / "c.pt", {"x": torch.zeros(3)})

    def boom(obj, f, *a, **k):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        C.save(path, {"x": torch.ones(3)})
    monkeypatch.undo()
    assert torch.equal(C.load(path).state["x"], torch.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp file left


def test_truncated_corrupted_and_foreign_files_fail_clearly(tmp_path):
    path = C.save(tmp_path / "t.pt", {"x": torch.arange(4096, dtype=torch.float32)})
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(C.CheckpointError, match="truncated or corrupted"):
        C.load(tmp_path / "trunc.pt")
    # flip bytes inside the tensor data: the leaf checksum catches it
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("data/0"))
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 1000
    flipped = bytearray(data)
    flipped[offset] ^= 0xFF
    (tmp_path / "flip.pt").write_bytes(bytes(flipped))
    with pytest.raises(C.CheckpointError, match="checksum mismatch"):
        C.load(tmp_path / "flip.pt")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(C.CheckpointError, match="not a funrl checkpoint"):
        C.load(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(C.CheckpointError, match=r"not a (readable )?funrl checkpoint"):
        C.load(tmp_path / "text.pt")
    with pytest.raises(C.CheckpointError, match="no such checkpoint"):
        C.load(tmp_path / "missing.pt")


def test_mismatches_name_the_leaf_algorithm_or_config(tmp_path):
    algo = _tiny()
    hp = ppo.HParams.create()
    state = algo.init(funrl.random.key(0), hp)
    path = C.save(tmp_path / "m.pt", state, algo=algo)
    bigger = _tiny(hidden=(16,))
    with pytest.raises(C.CheckpointError, match=r"hidden: checkpoint \(8,\), expected \(16,\)"):
        C.load(path, algo=bigger)
    like = bigger.init(funrl.random.key(0), hp)
    with pytest.raises(
        C.CheckpointError, match=r"state.params\['actor'\]\['0.weight'\] has shape \(8, 4\)"
    ):
        C.load(path, like=like)
    other = a2c.make(a2c.Config(num_envs=2, num_steps=8, hidden=(8,)))
    with pytest.raises(C.CheckpointError, match="saved by algorithm 'ppo', expected 'a2c'"):
        C.load(path, algo=other)
    with pytest.raises(C.CheckpointError, match=r"state.opt_state\[1\].hparams"):
        C.load(path, like=other.init(funrl.random.key(0), a2c.HParams.create()))
    with pytest.raises(C.CheckpointError, match=r"state\.update_step"):
        C.load(path, like=state.replace(update_step=torch.zeros((), dtype=torch.int32)))


def test_unstorable_values_are_rejected_with_their_path(tmp_path):
    with pytest.raises(C.CheckpointError, match=r"state\['h'\] is a object"):
        C.save(tmp_path / "x.pt", {"h": object()})
    with pytest.raises(C.CheckpointError, match="cannot store a function"):
        C.save(tmp_path / "x.pt", Inner(torch.zeros(1), name=lambda: 0))  # type: ignore[arg-type]
    with pytest.raises(C.CheckpointError, match="reserved"):
        C.save(tmp_path / "x.pt", {}, meta={"versions": 1})
    assert not (tmp_path / "x.pt").exists()


def _run(algo, state, hp, n):
    for _ in range(n):
        state, _ = algo.update(state, hp)
    return state


def test_resume_is_bit_for_bit(tmp_path):
    algo = _tiny()
    hp = ppo.HParams.create()
    straight = _run(algo, algo.init(funrl.random.key(1), hp), hp, 4)
    half = _run(algo, algo.init(funrl.random.key(1), hp), hp, 2)
    C.save(tmp_path / "h.pt", half, algo=algo, hparams=hp)
    ck = C.load(tmp_path / "h.pt", like=half, algo=algo)
    resumed = _run(algo, ck.state, ck.hparams, 2)
    assert tree.all_equal(resumed, straight)
    assert not tree.all_equal(half, straight)  # the test can fail


def test_population_resume_is_bit_for_bit(tmp_path):
    algo = _tiny().with_units(units.population())
    hps = pop.hparams(ppo.HParams, 2, lr=[1e-3, 3e-3])
    keys = pop.member_keys(funrl.random.key(2), 2)
    init = algo.init  # vmapped by the population transform
    straight = _run(algo, init(keys, hps), hps, 2)
    half = _run(algo, init(keys, hps), hps, 1)
    C.save(tmp_path / "p.pt", half, algo=algo, hparams=hps)
    ck = C.load(tmp_path / "p.pt", like=half)
    assert ck.state.params["actor"]["0.weight"].shape[0] == 2
    assert tree.all_equal(_run(algo, ck.state, ck.hparams, 1), straight)


def test_checkpointer_and_resumed_continue_funrl_train(tmp_path):
    algo = _tiny()
    hp = ppo.HParams.create()
    kw = dict(compile=False, progress=False, eval_episodes=1)
    straight = funrl.train(algo, funrl.random.key(3), hp, num_updates=4, **kw)
    saver = C.Checkpointer(tmp_path, every=1, algo=algo, hparams=hp, keep=2)
    funrl.train(algo, funrl.random.key(3), hp, num_updates=2, callback=saver, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "update_00000001.pt",
        "update_00000002.pt",
    ]
    last = C.latest(tmp_path)
    assert last is not None and last.name == "update_00000002.pt"
    ck = C.load(last, algo=algo)
    assert ck.meta["updates"] == 2
    saver2 = C.Checkpointer(tmp_path, every=2, algo=algo, hparams=hp, start=ck.meta["updates"])
    res = funrl.train(
        C.resumed(algo, ck.state),
        funrl.random.key(99),
        ck.hparams,
        num_updates=2,
        callback=saver2,
        **kw,
    )
    assert tree.all_equal(res.state, straight.state)
    assert C.latest(tmp_path).name == "update_00000004.pt"
    assert C.latest(tmp_path / "nope") is None


def test_checkpointer_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="every must be >= 1"):
        C.Checkpointer(tmp_path, every=0)
    with pytest.raises(ValueError, match="keep must be"):
        C.Checkpointer(tmp_path, every=1, keep=0)


def test_save_creates_parent_folders(tmp_path):
    p = C.save(tmp_path / "a" / "b" / "c.pt", {"x": torch.zeros(1)})
    assert p.is_file() and os.path.getsize(p) > 0
