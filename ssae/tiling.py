"""Evaluation in tiles of the training crop size (ours).

A network trained on crops of side T and evaluated on larger images meets there what its
training never showed it: the off-centre taps of a dilated convolution whose dilation
reaches past the crop's feature map (Table 1's d = 16 branch at 1/8 resolution, for crops up
to 128 px) get no gradient during training, yet a larger image puts them to use with their
initial values (:func:`ssae.training.untrained_weights`). With ``score.tiled`` the network
sees a larger image in overlapping tiles of side T (stride T/2), and each output pixel is
taken from the tile in which it lies most centrally: the network is evaluated at the size it
was trained at. Tiles of one call run as one batch.
"""
from __future__ import annotations

import math

import torch


def tile_starts(size: int, tile: int) -> list[int]:
    """Offsets of tiles of side ``tile`` covering ``size`` pixels with stride about ``tile / 2``
    (the last tile ends at the border; one tile of the whole side when ``size <= tile``).
    Offsets are multiples of 8 when ``size`` and ``tile`` are."""
    if size <= tile:
        return [0]
    n = math.ceil((size - tile) / (tile // 2)) + 1
    return [round(i * (size - tile) / (n - 1) / 8) * 8 if (size - tile) % 8 == 0 and tile % 8 == 0
            else round(i * (size - tile) / (n - 1)) for i in range(n)]


def _owned(starts: list[int], tile: int, size: int) -> list[tuple[int, int]]:
    """The part of the side each tile supplies: cut halfway between neighbouring tiles' centres."""
    cuts = [0] + [(a + b + tile) // 2 for a, b in zip(starts, starts[1:])] + [size]
    return list(zip(cuts, cuts[1:]))


def tiled(forward, x: torch.Tensor, tile: int) -> torch.Tensor:
    """``forward`` (B x C x h x w -> B x C' x h x w) applied to ``x`` in tiles of side at most
    ``tile``, stitched back to ``x``'s size; ``forward(x)`` itself when ``x`` fits one tile.
    The batch size is never used as a number, so a traced (ONNX) graph keeps a free batch axis."""
    c, h, w = (int(v) for v in x.shape[1:])  # constants in a traced graph; the batch axis stays free
    ys, xs = tile_starts(h, tile), tile_starts(w, tile)
    if len(ys) == 1 and len(xs) == 1:
        return forward(x)
    th, tw, n = min(h, tile), min(w, tile), len(ys) * len(xs)
    tiles = torch.stack([x[:, :, y:y + th, x0:x0 + tw] for y in ys for x0 in xs], dim=1)  # B x n x C x th x tw
    out = forward(tiles.reshape(-1, c, th, tw))
    out = out.reshape(-1, n, out.shape[1], th, tw)
    rows = []
    for iy, (y, (top, bottom)) in enumerate(zip(ys, _owned(ys, th, h))):
        cols = [out[:, iy * len(xs) + ix, :, top - y:bottom - y, left - x0:right - x0]
                for ix, (x0, (left, right)) in enumerate(zip(xs, _owned(xs, tw, w)))]
        rows.append(torch.cat(cols, dim=3))
    return torch.cat(rows, dim=2)
