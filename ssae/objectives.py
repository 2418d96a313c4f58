"""Training objectives of Section 3.1: eq. (1) and eq. (4).

Notation of the paper: X the original image (``target``), X^ its corrupted copy
(``corrupted``), F(X^) the network output (``out``), M the real-valued mask of the
corrupted region (``mask``) and, by footnote 1, its complement M_bar = 1 - M.

Both objectives are computed literally, per sample, then averaged over the batch:
``||.||_2`` is the (not squared) Euclidean norm and ``||.||_1`` the sum of absolute values
over the whole C x H x W tensor. ``mask`` is B x 1 x H x W and stands for the paper's
n x m x 3 mask, the same in every channel, so ``||M||_1`` counts each pixel C times.
A norm ``||M||_1 = 0`` (nothing corrupted) or ``||M_bar||_1 = 0`` (everything corrupted)
makes its term 0 instead of 0/0.

Start-up (ours, ``train.startup``). Every network here starts by putting out each crop's mean
grey level. Written literally, eq. (1) normalises each region by its own size with no floor, so
at initialisation the corrupted region's term pulls 10^2 times harder than the clean one and in
an unrelated direction; on fine textures it is noise about content that cannot be predicted,
and training can stay at the flat output for good (book: "Reading objective (1)"). With
``startup="whole"`` training starts on :func:`whole_image` (every pixel weighted alike, the
plain reconstruction task) and hands over to the objective once :func:`flatness` shows that the
output has left the flat state; from then on the objective is the paper's, as written.
"""
from __future__ import annotations

import torch

from ssae.errors import SsaeError


def _check(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
    if out.shape != target.shape or out.dim() != 4:
        raise SsaeError(f"output {tuple(out.shape)} and target {tuple(target.shape)} must both be B x C x H x W")
    b, _, h, w = out.shape
    if mask.shape != (b, 1, h, w):
        raise SsaeError(f"mask must be B x 1 x H x W = {(b, 1, h, w)}, got {tuple(mask.shape)}")


def _l2(t: torch.Tensor) -> torch.Tensor:
    """Per-sample Euclidean norm of a B x ... tensor (its gradient at 0 is 0)."""
    return torch.linalg.vector_norm(t.flatten(1), ord=2, dim=1)


def _weighted(weight: torch.Tensor, norm: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """``weight / count * norm`` per sample, 0 where ``count == 0``."""
    safe = torch.where(count > 0, count, torch.ones_like(count))
    return torch.where(count > 0, weight * norm / safe, torch.zeros_like(norm))


def _normal_term(out, target, mask, lam):
    """First term of eqs. (1) and (4): ``(1 - lam) / ||M_bar||_1 * ||M_bar (.) (F(X^) - X)||_2``."""
    channels = out.shape[1]
    keep = 1.0 - mask
    count = keep.flatten(1).sum(1) * channels
    return _weighted(1.0 - lam, _l2(keep * (out - target)), count)


def whole_image(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The start-up term (ours): ``||F(X^) - X||_2^2 / N`` over the whole image, mean over the
    batch. It is eq. (1) with squared norms and lambda equal to the corrupted share of the
    pixels, so each pixel counts alike whatever the size of its region."""
    return torch.square(out - target).mean()


def flatness(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How far the output is from the flat start (ours): the mean squared error on the
    uncorrupted pixels divided by the pixels' variance within each crop (averaged over the
    batch). About 1 or above: the network puts out each crop's mean (or worse); well below 1:
    it reproduces the texture. A detached scalar."""
    with torch.no_grad():
        _check(out, target, mask)
        keep = (1.0 - mask).expand_as(out)
        err = (torch.square(out - target) * keep).sum() / keep.sum().clamp_min(1.0)
        # each crop's sample variance in two passes (torch.var's one-pass algorithm costs
        # several times as much on the CPU; the two differ in rounding)
        centred = target - target.mean(dim=(2, 3), keepdim=True)
        pixels = max(target.shape[2] * target.shape[3] - 1, 1)
        var = (centred.square().sum(dim=(2, 3)) / pixels).mean().clamp_min(1e-12)
        return (err / var).float()


def objective1(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, lam: float) -> torch.Tensor:
    """Eq. (1), mean over the batch.

    ``L = (1-lam)/||M_bar||_1 * ||M_bar (.) (F(X^) - X)||_2 + lam/||M||_1 * ||M (.) (F(X^) - X)||_2``

    The first term asks for an accurate reconstruction of the untouched region, the second
    for restoring the original content in the corrupted region; each is normalised by the
    size of its region, so a small patch still gets weight ``lam``.
    """
    clean, corrupted = terms1(out, target, mask, lam)
    return (clean + corrupted).mean()


def terms1(out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of eq. (1) per sample: the untouched region's and the corrupted region's."""
    _check(out, target, mask)
    count = mask.flatten(1).sum(1) * out.shape[1]
    return _normal_term(out, target, mask, lam), _weighted(lam, _l2(mask * (out - target)), count)


def objective4(out: torch.Tensor, target: torch.Tensor, corrupted: torch.Tensor, mask: torch.Tensor,
               lam: float) -> torch.Tensor:
    """Eq. (4), mean over the batch.

    ``L = (1-lam)/||M_bar||_1 * ||M_bar (.) (F(X^) - X)||_2 - lam/||M||_1 * || |X^ - X| (.) (F(X^) - X)||_2``

    Note the minus: the second term rewards a large reconstruction error where the input
    was corrupted, which raises the contrast of the anomaly heatmap even for low-contrast
    defects. With M itself as the weight, the network could lower the loss by pushing every
    masked pixel as far from X as possible, even pixels the corruption left (almost) equal
    to X. Weighting by ``|X^ - X|`` instead (Sec. 3.1, last paragraph) scales the reward by
    how much each pixel was actually changed; the normalisation ``||M||_1`` is unchanged.
    """
    _check(out, target, mask)
    if corrupted.shape != target.shape:
        raise SsaeError(f"corrupted input {tuple(corrupted.shape)} and target {tuple(target.shape)} differ in shape")
    channels = out.shape[1]
    count = mask.flatten(1).sum(1) * channels
    weight = (corrupted - target).abs()
    reward = _weighted(lam, _l2(weight * (out - target)), count)
    return (_normal_term(out, target, mask, lam) - reward).mean()


#: start-ups of training (``train.startup``): "literal" is the objective from the first step (the
#: paper's text), "whole" starts on :func:`whole_image` until the output leaves the flat state
STARTUPS = ("literal", "whole")


def check(train_cfg) -> None:
    """Fail on settings no objective accepts: ``objective`` must be 1 or 4 and ``lam`` lie in
    [0, 1] (outside it one of the two terms gets a negative weight, and the loss rewards
    error where it should penalise it); ``startup`` one of :data:`STARTUPS` with
    ``escape_ratio`` in (0, 1). Training calls it before anything is written."""
    if train_cfg.objective not in (1, 4):
        raise SsaeError(f"unknown objective {train_cfg.objective!r}; the paper defines objectives 1 and 4")
    if not 0.0 <= train_cfg.lam <= 1.0:
        raise SsaeError(f"train.lam must lie in [0, 1] (eqs. 1 and 4 weigh the terms by 1 - lam and lam), got {train_cfg.lam!r}")
    if getattr(train_cfg, "startup", "literal") not in STARTUPS:
        raise SsaeError(f"train.startup must be one of {', '.join(STARTUPS)}, got {train_cfg.startup!r}")
    if not 0.0 < getattr(train_cfg, "escape_ratio", 0.5) < 1.0:
        raise SsaeError(f"train.escape_ratio must lie in (0, 1) (the flatness below which the start-up "
                        f"hands over), got {train_cfg.escape_ratio!r}")


def loss(train_cfg, out: torch.Tensor, target: torch.Tensor, corrupted: torch.Tensor,
         mask: torch.Tensor, starting: bool = False) -> torch.Tensor:
    """The objective chosen by ``train_cfg.objective`` (1 or 4) with ``train_cfg.lam``
    (both checked by :func:`check`); :func:`whole_image` instead while ``starting`` (the
    start-up phase of ``train.startup="whole"``)."""
    check(train_cfg)
    if starting:
        return whole_image(out, target)
    if train_cfg.objective == 1:
        return objective1(out, target, mask, train_cfg.lam)
    return objective4(out, target, corrupted, mask, train_cfg.lam)
