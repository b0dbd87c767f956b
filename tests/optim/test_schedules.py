"""Schedules: hand-checked values, torch.optim.lr_scheduler references, the battery."""

from __future__ import annotations

import math

import pytest
import torch

from funrl import optim
from funrl.testing import check_transforms


def values(schedule, n: int) -> list[float]:
    return [float(schedule(torch.tensor(t))) for t in range(n)]


def test_constant_and_linear() -> None:
    assert values(optim.constant_schedule(0.3), 3) == [0.3, 0.3, 0.3]
    assert values(optim.linear_schedule(1.0, 0.0, 4), 6) == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    lin = optim.linear_schedule(2.0, 4.0, 2, transition_begin=2)
    assert values(lin, 6) == [2.0, 2.0, 2.0, 3.0, 4.0, 4.0]
    assert optim.linear_schedule(1.0, 0.0, 4)(torch.tensor(1)).dtype == torch.float64


def test_cosine_matches_closed_form_and_torch_cosine_annealing() -> None:
    s = optim.cosine_decay_schedule(2.0, 4, alpha=0.25)
    expected = [0.5 + 1.5 * 0.5 * (1 + math.cos(math.pi * min(t, 4) / 4)) for t in range(7)]
    assert values(s, 7) == pytest.approx(expected, rel=1e-15)
    # CosineAnnealingLR with eta_min = alpha * lr gives the same lrs for t <= T_max
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert values(s, 5) == pytest.approx(lrs, rel=1e-12)


def test_warmup_join_piecewise() -> None:
    s = optim.warmup_schedule(0.0, 1.0, 2, optim.linear_schedule(1.0, 0.0, 4))
    assert values(s, 8) == [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    w = optim.warmup_cosine_decay_schedule(0.0, 1.0, 2, 2, 0.1)
    assert values(w, 6) == pytest.approx([0.0, 0.5, 1.0, 0.55, 0.1, 0.1])
    j = optim.join_schedules(
        [optim.constant_schedule(1.0), optim.linear_schedule(4.0, 2.0, 2)], [3]
    )
    assert values(j, 6) == [1.0, 1.0, 1.0, 4.0, 3.0, 2.0]
    pw = optim.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.1})
    assert values(pw, 6) == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.05, 0.05])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="transition_steps"):
        optim.linear_schedule(1.0, 0.0, 0)
    with pytest.raises(ValueError, match="decay_steps"):
        optim.cosine_decay_schedule(1.0, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="len\\(schedules\\)"):
        optim.join_schedules([optim.constant_schedule(1.0)], [3])
    with pytest.raises(ValueError, match="sorted"):
        c = optim.constant_schedule(1.0)
        optim.join_schedules([c, c, c], [5, 2])
    with pytest.raises(ValueError, match="peak_value"):
        optim.warmup_cosine_decay_schedule(0.0, 0.0, 2, 2, 0.0)
    with pytest.raises(TypeError, match="integer tensor"):
        optim.linear_schedule(1.0, 0.0, 4)(torch.tensor(1.5))


def test_schedules_battery() -> None:
    """Schedules of a count tensor: eager == vmap == compile (one compile for all)."""
    scheds = [
        optim.constant_schedule(0.3),
        optim.linear_schedule(1.0, 0.0, 4),
        optim.cosine_decay_schedule(1.0, 5, 0.1),
        optim.warmup_cosine_decay_schedule(0.0, 1.0, 2, 3, 0.1),
        optim.piecewise_constant_schedule(1.0, {2: 0.5}),
    ]

    def all_values(count: torch.Tensor) -> torch.Tensor:
        return torch.stack([s(count) for s in scheds])

    counts = torch.arange(8)
    out = check_transforms(all_values, counts, members=2)
    assert out.shape == (8, 5)
    assert out[:, 1].tolist() == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0]
    # a count tensor of any shape gives values of that shape
    assert optim.linear_schedule(1.0, 0.0, 4)(torch.arange(6).reshape(2, 3)).shape == (2, 3)
