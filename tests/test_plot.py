import json
import math
import sys

import pytest

from funrl import plot


def _write(run_dir, rows):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


def _seeds(tmp_path):
    # seed 0: returns 1, 2, NaN; seed 1: returns 3, 6, 9 at env_steps 10, 20, 30
    a = _write(
        tmp_path / "ppo-CartPole-v1-s0-20250101-120000",
        [
            {"update": 1, "env_steps": 10, "episode_return": 1.0},
            {"update": 2, "env_steps": 20, "episode_return": 2.0},
            {"update": 3, "env_steps": 30, "episode_return": float("nan")},
        ],
    )
    b = _write(
        tmp_path / "ppo-CartPole-v1-s1-20250101-120500",
        [
            {"update": 1, "env_steps": 10, "episode_return": 3.0},
            {"update": 2, "env_steps": 20, "episode_return": 6.0},
            {"update": 3, "env_steps": 30, "episode_return": 9.0},
        ],
    )
    return a, b


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("ppo-CartPole-v1-s3-20250101-120000", "ppo-CartPole-v1"),
        ("lr1e-3_seed12", "lr1e-3"),
        ("a2c-s0", "a2c"),
        ("baseline", "baseline"),
        ("sweep-s", "sweep-s"),
    ],
)
def test_group_label(name, label):
    assert plot.group_label(name) == label


def test_curves_mean_and_spread_over_seeds(tmp_path):
    a, b = _seeds(tmp_path)
    (c,) = plot.curves([plot.load_run(a), plot.load_run(b)])
    assert c.label == "ppo-CartPole-v1" and c.x == [10.0, 20.0, 30.0]
    assert c.mean == [2.0, 4.0, 9.0] and c.n == [2, 2, 1]  # NaN skipped
    assert c.std == [1.0, 2.0, 0.0] and c.low == [1.0, 2.0, 9.0] and c.high == [3.0, 6.0, 9.0]
    (s,) = plot.curves([plot.load_run(b)], smooth=2)
    assert s.mean == [3.0, 4.5, 7.5]


def test_population_curve_is_over_members(tmp_path):
    rows = [
        {"update": u, "member": m, "episode_return": 10.0 * m + u} for u in (1, 2) for m in range(3)
    ]
    run = plot.load_run(_write(tmp_path / "pop", rows))
    assert run.is_population
    (c,) = plot.curves([run])
    assert c.x == [1.0, 2.0] and c.mean == [11.0, 12.0] and c.n == [3, 3]
    assert math.isclose(c.std[0], math.sqrt(200 / 3))


def test_plot_writes_a_png_for_a_real_run(tmp_path):
    pytest.importorskip("matplotlib")
    import funrl
    from funrl.algos import ppo

    algo = ppo.make(ppo.Config(num_envs=4, num_steps=16, hidden=(8,), update_epochs=1))
    funrl.train(
        algo,
        funrl.random.key(0),
        ppo.HParams.create(),
        num_updates=3,
        compile=False,
        progress=False,
        eval_episodes=1,
        out_dir=tmp_path / "run-s0",
    )
    a, b = _seeds(tmp_path)
    out = plot.plot_runs([tmp_path / "run-s0", a, b], tmp_path / "img" / "curves.png", smooth=2)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no metrics file"):
        plot.load_run(tmp_path)
    run = plot.load_run(_write(tmp_path / "r", [{"update": 1, "loss": 0.5}]))
    with pytest.raises(KeyError, match=r"no 'episode_return'.*columns: \['loss', 'update'\]"):
        plot.curves([run])
    with pytest.raises(ValueError, match="smooth must be >= 1"):
        plot.curves([run], y="loss", smooth=0)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.jsonl").write_text('{"update": 1}\nnot json\n{"update": 3}\n')
    with pytest.raises(ValueError, match=r"metrics\.jsonl:2: not a JSON line"):
        plot.load_run(tmp_path / "bad")
    (tmp_path / "bad" / "metrics.jsonl").write_text('{"update": 1}\n{"upd')  # still writing
    assert len(plot.load_run(tmp_path / "bad").rows) == 1
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'funrl\[plot\]'"):
        plot.plot_runs([tmp_path / "r"], tmp_path / "x.png", y="loss")


def test_tensorboard_export(tmp_path):
    pytest.importorskip("tensorboard")
    a, _ = _seeds(tmp_path)
    logdir = plot.to_tensorboard(a)
    assert any(p.name.startswith("events.out.tfevents") for p in logdir.iterdir())
