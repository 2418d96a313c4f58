"""Objectives (1) and (4) on tiny hand-computed tensors."""
import math
from types import SimpleNamespace

import pytest
import torch

from ssae.errors import SsaeError
from ssae.objectives import check, loss, objective1, objective4


def t(rows):
    """A 1 x 1 x H x W tensor from nested lists."""
    return torch.tensor(rows, dtype=torch.float32)[None, None]


# out - target = [[3, 0], [0, 4]]; M = [[1, 0], [0, 0]]
OUT, TARGET, MASK = t([[3.0, 0.0], [0.0, 4.0]]), t([[0.0, 0.0], [0.0, 0.0]]), t([[1.0, 0.0], [0.0, 0.0]])


def test_objective1_by_hand():
    # ||M_bar||_1 = 3, ||M_bar (.) d||_2 = 4;  ||M||_1 = 1, ||M (.) d||_2 = 3
    assert objective1(OUT, TARGET, MASK, 0.5).item() == pytest.approx(0.5 * 4 / 3 + 0.5 * 3 / 1)
    assert objective1(OUT, TARGET, MASK, 0.0).item() == pytest.approx(4 / 3)
    assert objective1(OUT, TARGET, MASK, 1.0).item() == pytest.approx(3.0)


def test_objective1_real_valued_mask_and_channels():
    # footnote 1: M_bar = 1 - M. M = [[0.5, 0.5], [0, 0]], d = 1 everywhere, 3 channels
    mask = t([[0.5, 0.5], [0.0, 0.0]])
    out, target = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    # ||M_bar||_1 = 3 * 3 = 9, ||M_bar d||_2 = sqrt(3 * (0.25 + 0.25 + 1 + 1)) = sqrt(7.5)
    # ||M||_1 = 3 * 1 = 3,     ||M d||_2 = sqrt(3 * (0.25 + 0.25)) = sqrt(1.5)
    expected = 0.3 * math.sqrt(7.5) / 9 + 0.7 * math.sqrt(1.5) / 3
    assert objective1(out, target, mask, 0.7).item() == pytest.approx(expected)


def test_objective1_batch_mean():
    out = torch.cat([OUT, TARGET])
    got = objective1(out, torch.cat([TARGET, TARGET]), torch.cat([MASK, MASK]), 0.5).item()
    assert got == pytest.approx((0.5 * 4 / 3 + 0.5 * 3) / 2)


def test_objective4_by_hand():
    corrupted = t([[0.5, 0.0], [0.0, 0.25]])  # |X^ - X| also nonzero outside M: only M normalises
    # second term: || [[0.5 * 3, 0], [0, 0.25 * 4]] ||_2 / ||M||_1 = sqrt(2.25 + 1) / 1
    expected = 0.4 * 4 / 3 - 0.6 * math.sqrt(3.25)
    assert objective4(OUT, TARGET, corrupted, MASK, 0.6).item() == pytest.approx(expected)
    assert objective4(OUT, TARGET, corrupted, MASK, 0.0).item() == pytest.approx(4 / 3)
    assert objective4(OUT, TARGET, corrupted, MASK, 1.0).item() == pytest.approx(-math.sqrt(3.25))


def test_objective4_rewards_error_in_corrupted_region():
    # d loss / d out in the corrupted pixel pushes F(X^) away from X (gradient descent increases |out - X|)
    out = t([[0.6, 0.5], [0.5, 0.5]]).requires_grad_()
    target = t([[0.5, 0.5], [0.5, 0.5]])
    corrupted = t([[0.9, 0.5], [0.5, 0.5]])
    mask = t([[1.0, 0.0], [0.0, 0.0]])
    objective4(out, target, corrupted, mask, 1.0).backward()
    assert out.grad[0, 0, 0, 0] < 0          # out > target there: descent raises out further
    assert torch.all(out.grad[0, 0].flatten()[1:] == 0)  # |X^ - X| = 0 elsewhere: no reward
    # while objective (1) pulls it back to the target
    out.grad = None
    objective1(out, target, mask, 1.0).backward()
    assert out.grad[0, 0, 0, 0] > 0


def test_empty_and_full_mask_no_nan():
    empty = torch.zeros(1, 1, 2, 2)
    out = OUT.clone().requires_grad_()
    for value in (objective1(out, TARGET, empty, 0.5), objective4(out, TARGET, TARGET, empty, 0.5)):
        assert value.item() == pytest.approx(0.5 * 5 / 4)    # only the first term: ||d||_2 / 4
        value.backward()
        assert torch.isfinite(out.grad).all()
        out.grad = None
    full = torch.ones(1, 1, 2, 2)
    assert objective1(OUT, TARGET, full, 0.5).item() == pytest.approx(0.5 * 5 / 4)
    perfect = TARGET.clone().requires_grad_()               # zero error: the norm's gradient at 0
    objective1(perfect, TARGET, MASK, 0.5).backward()
    assert torch.isfinite(perfect.grad).all()


def test_loss_dispatch():
    corrupted = t([[0.5, 0.0], [0.0, 0.25]])
    cfg = SimpleNamespace(objective=1, lam=0.5)
    assert loss(cfg, OUT, TARGET, corrupted, MASK) == objective1(OUT, TARGET, MASK, 0.5)
    cfg.objective = 4
    assert loss(cfg, OUT, TARGET, corrupted, MASK) == objective4(OUT, TARGET, corrupted, MASK, 0.5)
    cfg.objective = 2
    with pytest.raises(SsaeError, match="objective"):
        loss(cfg, OUT, TARGET, corrupted, MASK)
    with pytest.raises(SsaeError):
        objective1(OUT, TARGET, torch.zeros(1, 1, 3, 3), 0.5)


@pytest.mark.parametrize("lam", [-0.1, 1.5, float("nan")])
def test_lambda_outside_the_unit_interval_is_an_error(lam):
    cfg = SimpleNamespace(objective=1, lam=lam)
    with pytest.raises(SsaeError, match="train.lam must lie in"):
        loss(cfg, OUT, TARGET, OUT, MASK)
    with pytest.raises(SsaeError, match="train.lam must lie in"):
        check(cfg)
    cfg.lam = 0.0  # the ends are allowed: lam = 0 asks for no restoration at all
    assert torch.isfinite(loss(cfg, OUT, TARGET, OUT, MASK))
