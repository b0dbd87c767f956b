"""funrl.runtime: usable, busy and free cores, and the thread count --threads auto picks."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from funrl import arguments, runtime


def _never(*args, **kwargs):
    raise AssertionError("small work must not sample the machine")


def test_usable_cores_are_this_process_cpus():
    cores = runtime.usable_cores()
    assert cores and len(set(cores)) == len(cores)
    if hasattr(os, "sched_getaffinity"):
        assert set(cores) == os.sched_getaffinity(0)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs /proc/stat")
def test_busy_cores_sees_a_spinning_process():
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        busy = runtime.busy_cores(0.4)
    finally:
        spin.kill()
        spin.wait()
    assert busy is not None and busy >= 0.6, busy
    with pytest.raises(ValueError, match="sample_s must be > 0"):
        runtime.busy_cores(0)


def test_free_cores_rounds_what_others_leave(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cores", lambda: [0, 1])
    for busy, free in [(0.05, 2), (0.6, 1), (1.0, 1), (2.0, 1), (None, 2)]:
        monkeypatch.setattr(runtime, "busy_cores", lambda sample_s=0.15, b=busy: b)
        assert runtime.free_cores() == free, busy
    monkeypatch.setattr(runtime, "usable_cores", lambda: list(range(8)))
    monkeypatch.setattr(runtime, "busy_cores", lambda sample_s=0.15: 2.5)
    assert runtime.free_cores() == 5


def test_auto_threads_follow_work_and_free_cores(monkeypatch):
    monkeypatch.setattr(runtime, "free_cores", _never)
    assert runtime.auto_threads(1) == 1
    assert runtime.auto_threads(2 * runtime.ENVS_PER_THREAD - 1) == 1
    assert runtime.auto_threads(512, free=2) == 2
    assert runtime.auto_threads(512, free=8) == 4
    assert runtime.auto_threads(512, free=1) == 1
    monkeypatch.setattr(runtime, "free_cores", lambda sample_s=0.15: 3)
    assert runtime.auto_threads(10_000) == 3
    with pytest.raises(ValueError, match="envs must be >= 1"):
        runtime.auto_threads(0)


def test_resolve_threads_and_set_threads(monkeypatch):
    assert runtime.resolve_threads(3, envs=1) == 3
    for bad in (0, -1, 1.5, True, "two"):
        with pytest.raises(ValueError, match="positive int or 'auto'"):
            runtime.resolve_threads(bad, envs=1)  # type: ignore[arg-type]
    before = torch.get_num_threads()
    monkeypatch.setattr(runtime, "free_cores", lambda sample_s=0.15: 4)
    try:
        assert arguments.set_threads("auto", envs=4096) == 4
        assert torch.get_num_threads() == 4
        assert arguments.set_threads("auto", envs=4096, procs=2) == 2  # 2 processes share 4
        assert arguments.set_threads("auto", envs=16) == 1
        assert arguments.set_threads(2, envs=16) == 2
    finally:
        torch.set_num_threads(before)


def test_threads_argument_and_environment(monkeypatch):
    assert arguments.threads_arg("auto") == "auto" and arguments.threads_arg("3") == 3
    monkeypatch.setenv("FUNRL_THREADS", "2")
    assert arguments.default_threads() == 2
    monkeypatch.setenv("FUNRL_THREADS", "AUTO")
    assert arguments.default_threads() == "auto"
    monkeypatch.setenv("FUNRL_THREADS", "many")
    with pytest.raises(SystemExit, match="FUNRL_THREADS='many': expected a positive integer"):
        arguments.default_threads()
    monkeypatch.delenv("FUNRL_THREADS")
    assert arguments.default_threads() == "auto"


def test_cli_run_records_its_thread_count(tmp_path, monkeypatch):
    from funrl import cli

    monkeypatch.delenv("FUNRL_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        code = cli.main(
            ["train", "ppo", "--no-preset", "--no-compile", "--quiet", "--out", str(tmp_path),
             "--set", "num_envs=2", "--set", "num_steps=8", "--updates", "1", "--eval-episodes", "1"]
        )  # fmt: skip
        assert code == 0
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert summary["threads"] == 1  # auto: 2 envs are far too little work for 2 threads
    finally:
        torch.set_num_threads(before)


def test_thread_contention_warns_once_when_updates_slow_and_a_core_is_taken(monkeypatch):
    import warnings
    from types import SimpleNamespace

    from funrl import hooks

    free = {"n": 2}
    monkeypatch.setattr(runtime, "free_cores", lambda sample_s=0.15: free["n"])
    comm = SimpleNamespace(rank=0)
    step = SimpleNamespace(
        done=False, start=0, update=0, update_s=0.0, runner=SimpleNamespace(comm=comm)
    )

    def feed(hook, times):
        for t in times:
            step.update += 1
            step.update_s = t
            hook(step)

    hook = hooks.thread_contention(threads=lambda: 2, window=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # compiling first updates are left out; a slowdown with both cores free (say,
        # learning starts) becomes the new baseline without a warning
        feed(hook, [9.0, 9.0] + [0.01] * 6 + [0.05] * 3)
    free["n"] = 1  # another process takes a core
    with pytest.warns(
        UserWarning, match=r"slowed 4\.0x .* 2 torch threads run with 1 core\(s\) free"
    ):
        feed(hook, [0.2, 0.2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feed(hook, [0.4] * 10)  # once only
        step.update = 0
        one_thread = hooks.thread_contention(threads=lambda: 1, window=3)
        feed(one_thread, [0.01] * 5 + [1.0] * 5)  # one thread cannot contend with itself


def test_auto_processes_follow_population_size_and_free_cores(monkeypatch):
    monkeypatch.setattr(runtime, "free_cores", _never)
    assert runtime.auto_processes(1) == 1
    assert runtime.auto_processes(2 * runtime.MEMBERS_PER_PROCESS - 1) == 1
    assert runtime.auto_processes(64, free=2) == 2
    assert runtime.auto_processes(64, free=16) == 4
    with pytest.raises(ValueError, match="members must be >= 1"):
        runtime.auto_processes(0)


_TINY = ["--no-preset", "--no-compile", "--quiet", "--updates", "2", "--eval-episodes", "1",
         "--set", "num_envs=2", "--set", "num_steps=8"]  # fmt: skip


def test_nproc_auto_shards_a_population_over_free_cores(tmp_path, monkeypatch, capsys):
    from funrl import cli
    from funrl.distributed import cli as dcli

    assert cli.main(["train", "ppo", "--nproc", "auto", *_TINY]) == 2
    assert "funrl train: --nproc auto is for populations" in capsys.readouterr().err
    assert dcli.main(["dataparallel", "ppo", "--nproc", "auto", *_TINY]) == 2
    assert "--nproc auto is for populations" in capsys.readouterr().err
    small = tmp_path / "small"
    argv = ["population", "ppo", "--nproc", "auto", *_TINY]
    assert dcli.main([*argv, "--population", "4", "--out", str(small)]) == 0  # one process
    assert json.loads((small / "summary.json").read_text())["world_size"] == 1
    monkeypatch.setattr(runtime, "free_cores", lambda sample_s=0.15: 2)
    big = tmp_path / "big"
    assert dcli.main([*argv, "--population", "32", "--out", str(big)]) == 0
    assert "--nproc auto: 2 processes" in capsys.readouterr().out
    summary = json.loads((big / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["threads"] == 1
