import json
import subprocess
import sys
import textwrap

import pytest
import torch

import funrl
from funrl import export
from funrl.algos import ppo

# Runs in a fresh interpreter (-I: no PYTHONPATH, no user site, no cwd on sys.path) where
# importing funrl is blocked outright (it is installed editable in this venv), so the
# artifact must load and run on torch alone.
_CLEAN = textwrap.dedent(
    """
    import sys

    class _Block:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "funrl" or name.startswith("funrl."):
                raise ImportError("funrl is blocked in this process")
            return None

    sys.meta_path.insert(0, _Block)
    try:
        import funrl  # noqa: F401
        raise SystemExit("funrl should not be importable here")
    except ImportError:
        pass
    import torch
    jobs = torch.load(sys.argv[1])
    out = []
    for fmt, path, obs in jobs:
        policy = torch.export.load(path).module() if fmt == "torch.export" else torch.jit.load(path)
        out.append(policy(obs))
    torch.save(out, sys.argv[2])
    """
)


def _run_clean(tmp_path, jobs):
    """Run each ``(format, artifact, obs)`` in one interpreter that cannot import funrl."""
    torch.save([(f, str(p), o) for f, p, o in jobs], tmp_path / "jobs.pt")
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _CLEAN, str(tmp_path / "jobs.pt"), str(tmp_path / "out.pt")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(tmp_path / "out.pt")


def _trained(env="CartPole-v1", **kw):
    algo = ppo.make(
        ppo.Config(
            env=env, num_envs=2, num_steps=8, num_minibatches=1, update_epochs=1, hidden=(8,), **kw
        )
    )
    hp = ppo.HParams.create()
    state, _ = algo.update(algo.init(funrl.random.key(0), hp), hp)
    return algo, state


def test_artifacts_run_without_funrl_and_match_act(tmp_path):
    jobs, expected = [], []
    cartpole, s_cp = _trained()
    obs = funrl.random.normal(funrl.random.key(1), (7, 4))  # batch 7 != traced batch 2
    for method in ("auto", "torchscript"):
        out = export.export_policy(
            cartpole, s_cp, tmp_path / f"cartpole-{method}.pt2", method=method
        )
        assert out.format == ("torch.export" if method == "auto" else "torchscript")
        assert out.fallback_reason is None
        jobs.append((out.format, out.path, obs))
        expected.append(cartpole.act(cartpole.act_params(s_cp), obs))
        assert torch.equal(export.load_policy(out.path)(obs), expected[-1])
    # continuous actions, observation normalisation inside the artifact
    pendulum, s_pd = _trained("Pendulum-v1", normalize_obs=True)
    out = export.export_policy(pendulum, s_pd, tmp_path / "pendulum.pt2")
    assert out.meta["obs_shape"] == [3] and out.meta["action_shape"] == [1]
    obs = funrl.random.normal(funrl.random.key(2), (5, 3)) * 3
    jobs.append((out.format, out.path, obs))
    expected.append(pendulum.act(pendulum.act_params(s_pd), obs))
    got = _run_clean(tmp_path, jobs)
    assert got[0].dtype == torch.int64 and torch.equal(got[0], expected[0])
    assert torch.equal(got[1], expected[1])
    assert torch.allclose(got[2], expected[2], atol=1e-6)
    assert not torch.allclose(expected[2], torch.zeros_like(expected[2]))


def test_fallback_to_torchscript_says_why(tmp_path, monkeypatch):
    def fail(*a, **k):
        raise RuntimeError("cannot trace this op")

    monkeypatch.setattr(torch.export, "export", fail)
    algo, state = _trained()
    with pytest.warns(UserWarning, match="falling back to TorchScript"):
        out = export.export_policy(algo, state, tmp_path / "p.pt2")
    assert out.format == "torchscript" and "cannot trace this op" in out.fallback_reason
    obs = torch.zeros(3, 4)
    assert torch.equal(export.load_policy(out.path)(obs), algo.act(algo.act_params(state), obs))
    with pytest.raises(RuntimeError, match="cannot trace"):
        export.export_policy(algo, state, tmp_path / "q.pt2", method="export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.pt2"]  # nothing half-written


def test_bad_arguments(tmp_path):
    algo, state = _trained()
    with pytest.raises(ValueError, match="method must be"):
        export.export_policy(algo, state, tmp_path / "x.pt2", method="onnx")
    with pytest.raises(ValueError, match="example_batch must be >= 2"):
        export.export_policy(algo, state, tmp_path / "x.pt2", example_batch=1)
    (tmp_path / "junk.pt2").write_text("junk")
    with pytest.raises(ValueError, match="not an exported policy"):
        export.load_policy(tmp_path / "junk.pt2")
    with pytest.raises(FileNotFoundError):
        export.load_policy(tmp_path / "none.pt2")


def test_meta_is_stored_in_the_artifact(tmp_path):
    import zipfile

    algo, state = _trained()
    out = export.export_policy(algo, state, tmp_path / "m.pt2")
    with zipfile.ZipFile(out.path) as z:
        name = next(n for n in z.namelist() if n.endswith("funrl_policy.json"))
        meta = json.loads(z.read(name))
    assert meta["env"] == "CartPole-v1" and meta["format"] == "torch.export"
    assert meta["action_dtype"] == "torch.int64"
