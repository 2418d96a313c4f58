"""Corrupted training inputs, Section 3.2 and Figure 5.

For each image X and each of ``cfg.n_patches`` patches (Figure 5):

1. sample a square patch: side ``s ~ U[patch_min, patch_max] * min(H, W)``, random place;
2. X1 = the original patch, X3 = the transformed patch (elastic deformation by default),
   X2 = a random smooth shape mask in [0, 1] that is 0 on and outside the patch border;
   X4 = X2 (.) X3 + (1 - X2) (.) X1;
3. the global mask M is X2 embedded in zeros, and ``x_hat = M (.) X3 + (1 - M) (.) X``,
   which equals X4 inside the patch and X outside.

Everything is batched in torch on the device of ``x``. The patch geometry is a few
B-vectors; the work happens on a P x P canvas around each patch (P = the largest patch side
in the batch); random fields are drawn on a small grid in patch coordinates and read at
pixel resolution with ``grid_sample`` through a per-image affine map. Randomness comes
only from ``generator`` (drawn on its device), so a seed fixes the result.

Transformations (``cfg.method``; ``cfg.alternate`` adds methods chosen per image at random):
``elastic`` (Gaussian-smoothed random displacement field, the paper's choice), ``cutout``
(X3 = 0), ``swap`` (X3 = the same region of another image of the batch, or of ``source``:
the paper's patch swapping ``x_S = y_S``), ``occlusion`` (X3 = a region at a random place of
an image of ``occluders``, "content from a different data source" as in Sec. 4, e.g. the
folder ``corruption.occluders``; smooth random colour noise without one), ``none``.

Shape of X2 (``cfg.shape``): ``blob`` (the paper's "random smooth real-valued shape mask")
or ``band`` (ours): a hard-edged stripe across the whole patch, horizontal or vertical at
random, like the sharp straight edges of MTD's uneven grinding.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ssae.errors import SsaeError

METHODS = ("elastic", "cutout", "swap", "occlusion", "none")
SHAPES = ("blob", "band")

_EDGE = 0.15      # ours: width of the smooth fade of the shape window, fraction of the patch side
_SOFTNESS = 0.2   # ours: soft-threshold temperature of the shape mask, in standard deviations


def _uniform(n, lo, hi, generator, device):
    return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)


def _gen_device(generator) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _gaussian_kernel(sigma: float, device) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def smooth_noise(b: int, c: int, sigma_frac: float, generator, device) -> torch.Tensor:
    """White noise Gaussian-smoothed with sigma ``sigma_frac`` of the patch side, B x c x R x R.

    The grid covers the unit patch ``[0, 1]^2`` with R cells (sigma is about 3 cells); the noise
    is drawn with a margin and smoothed without padding, so the field is stationary up
    to the patch border. Each channel is normalised to zero mean and unit variance.
    """
    res = int(min(64, max(8, math.ceil(3.0 / max(sigma_frac, 1e-3)))))
    sigma = max(0.5, sigma_frac * res)
    k = _gaussian_kernel(sigma, _gen_device(generator))
    r = (k.numel() - 1) // 2
    noise = torch.randn(b, c, res + 2 * r, res + 2 * r, generator=generator, device=_gen_device(generator))
    # separable "valid" convolution as band-matrix products: band[i, i:i + 2r + 1] = k
    k = k.to(device)
    offset = torch.arange(res + 2 * r, device=device)[None] - torch.arange(res, device=device)[:, None]
    band = torch.where((offset >= 0) & (offset <= 2 * r), k[offset.clamp(0, 2 * r)], 0.0)
    field = band @ noise.to(device) @ band.T
    field = field - field.mean(dim=(2, 3), keepdim=True)
    # the sample standard deviation of the centred field in one more pass (torch.std's
    # one-pass algorithm costs several times as much on the CPU; the two differ in rounding)
    std = (field.square().sum(dim=(2, 3), keepdim=True) / (res * res - 1)).sqrt()
    return field / std.clamp_min(1e-6)


def sample_boxes(b: int, h: int, w: int, patch_min: float, patch_max: float, generator) -> torch.Tensor:
    """Random square patches, a B x 4 long tensor of ``(y0, x0, y1, x1)`` (ends exclusive)."""
    dev = _gen_device(generator)
    side_max = min(h, w)
    frac = _uniform(b, patch_min, patch_max, generator, dev)
    side = (frac * side_max).round().long().clamp(min(2, side_max), side_max)
    y0 = (torch.rand(b, generator=generator, device=dev) * (h - side + 1)).floor().long()
    x0 = (torch.rand(b, generator=generator, device=dev) * (w - side + 1)).floor().long()
    return torch.stack([y0, x0, y0 + side, x0 + side], dim=1).cpu()


def _patch_coords(boxes: torch.Tensor, h: int, w: int, device):
    """Pixel centres in patch coordinates: u (B x W) and v (B x H), in (0, 1) inside the patch."""
    boxes = boxes.to(device=device, dtype=torch.float32)
    side = (boxes[:, 2] - boxes[:, 0])[:, None]
    u = (torch.arange(w, device=device, dtype=torch.float32)[None] + 0.5 - boxes[:, 1:2]) / side
    v = (torch.arange(h, device=device, dtype=torch.float32)[None] + 0.5 - boxes[:, 0:1]) / side
    return u, v


def _fade(t: torch.Tensor) -> torch.Tensor:
    """1-D window: 0 outside (0, 1), smoothstep up over the first ``_EDGE``, 1 in the middle."""
    d = (torch.minimum(t, 1 - t) / _EDGE).clamp(0, 1)
    return d * d * (3 - 2 * d)


def _read(field: torch.Tensor, u: torch.Tensor, v: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample a B x c x R x R field defined on the unit patch at every pixel (B x c x H x W)."""
    b, h, w = u.shape[0], v.shape[1], u.shape[1]
    grid = torch.stack([(2 * u - 1)[:, None, :].expand(b, h, w), (2 * v - 1)[:, :, None].expand(b, h, w)], dim=-1)
    return F.grid_sample(field, grid.to(field.dtype), mode=mode, padding_mode="border", align_corners=False)


def shape_mask(boxes: torch.Tensor, h: int, w: int, shape_sigma: float, generator, device) -> torch.Tensor:
    """X2 embedded in zeros: a smooth random shape in [0, 1], 0 on and outside each box. B x 1 x H x W.

    Smoothed noise through a soft threshold (a random level in [-0.5, 0.5] standard
    deviations, lowered when needed so the shape is never empty), times a flat-top window
    that fades to 0 at the patch border.
    """
    b = boxes.shape[0]
    noise = smooth_noise(b, 1, shape_sigma, generator, device)
    level = _uniform(b, -0.5, 0.5, generator, _gen_device(generator)).to(device)
    res = noise.shape[-1]
    centres = (torch.arange(res, device=device, dtype=torch.float32) + 0.5) / res
    inner = _fade(centres)[:, None] * _fade(centres)[None, :] >= 0.99     # cells where the window is ~1
    peak = noise[:, 0][:, inner].amax(dim=1)
    level = torch.minimum(level, peak - 3 * _SOFTNESS)
    u, v = _patch_coords(boxes, h, w, device)
    values = _read(noise, u, v, "bicubic")
    shape = torch.sigmoid((values - level[:, None, None, None]) / _SOFTNESS)
    window = _fade(v)[:, None, :, None] * _fade(u)[:, None, None, :]
    mask = shape * window
    # values too small to register in 1 - M (float32) would change pixels the mask calls clean
    return torch.where(mask < 1e-6, torch.zeros_like(mask), mask)


def band_mask(boxes: torch.Tensor, h: int, w: int, band_min: float, band_max: float, generator,
              device) -> torch.Tensor:
    """X2 for ``shape="band"`` (ours), embedded in zeros: 1 on a stripe, 0 elsewhere. B x 1 x H x W.

    The stripe spans the patch along one axis (horizontal or vertical at random) and covers
    a random interval of relative width in ``[band_min, band_max]`` along the other, so
    its two long edges are sharp straight lines inside the patch (the interval is at least
    one pixel wide). Pixels whose centre lies in the patch and in the interval are 1; the
    mask is binary.
    """
    dev = _gen_device(generator)
    b = boxes.shape[0]
    vertical = (torch.rand(b, generator=generator, device=dev) < 0.5).to(device)
    side = (boxes[:, 2] - boxes[:, 0]).to(device=device, dtype=torch.float32)
    # at least one pixel wide, so that a stripe on a small patch is never empty
    width = torch.maximum(_uniform(b, band_min, band_max, generator, dev).to(device), 1.0 / side).clamp(max=1.0)
    start = (torch.rand(b, generator=generator, device=dev).to(device) * (1 - width))
    u, v = _patch_coords(boxes, h, w, device)                  # B x W, B x H
    lo, hi, vert = start[:, None], (start + width)[:, None], vertical[:, None]
    # a vertical stripe cuts the patch's u range and spans its v range; a horizontal one the reverse
    in_u = (u > 0) & (u < 1) & (~vert | ((u >= lo) & (u < hi)))
    in_v = (v > 0) & (v < 1) & (vert | ((v >= lo) & (v < hi)))
    return (in_v[:, None, :, None] & in_u[:, None, None, :]).to(torch.float32)


def _elastic(x, boxes, alpha, sigma, generator):
    """X3 for elastic deformation: x read at p + d(p), d a smooth random displacement field.

    The field is Gaussian-smoothed noise (sigma = ``sigma`` x patch side), scaled to a
    largest displacement of ``alpha`` x patch side; reads are clamped to the patch, so X3
    only uses the patch's own content.
    """
    b, _, h, w = x.shape
    field = smooth_noise(b, 2, sigma, generator, x.device)
    field = field / field.abs().amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    u, v = _patch_coords(boxes, h, w, x.device)
    disp = _read(field, u, v, "bilinear")                        # B x 2 x H x W, in [-1, 1]
    bx = boxes.to(device=x.device, dtype=torch.float32)
    side = (bx[:, 2] - bx[:, 0])[:, None, None]
    px = torch.arange(w, device=x.device, dtype=torch.float32)[None, None] + 0.5 + alpha * side * disp[:, 0]
    py = torch.arange(h, device=x.device, dtype=torch.float32)[None, :, None] + 0.5 + alpha * side * disp[:, 1]
    px = torch.maximum(torch.minimum(px, bx[:, 3, None, None] - 0.5), bx[:, 1, None, None] + 0.5)
    py = torch.maximum(torch.minimum(py, bx[:, 2, None, None] - 0.5), bx[:, 0, None, None] + 0.5)
    grid = torch.stack([2 * px / w - 1, 2 * py / h - 1], dim=-1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _windows(index, origins: list[tuple[int, int]], size: int, device):
    """Advanced indices ``(b, y, x)`` of the ``size`` x ``size`` windows at ``origins`` (y, x) of
    the images ``index``: ``t[b, :, y, x]`` is B x size x size x C, one scatter for the batch
    instead of one slice assignment per image (about half the time on one core; for reading,
    the slices of :func:`_crops` are as fast)."""
    o = torch.tensor(origins, dtype=torch.long, device=device).reshape(-1, 2)
    r = torch.arange(size, device=device)
    b = torch.as_tensor(list(index), dtype=torch.long, device=device)[:, None, None]
    return b, (o[:, 0, None] + r)[:, :, None], (o[:, 1, None] + r)[:, None, :]


def _crops(t: torch.Tensor, index: list[int], origins: list[tuple[int, int]], size: int) -> torch.Tensor:
    """Stack ``t[index[b], :, y:y+size, x:x+size]`` for each image b with origin (y, x)."""
    return torch.stack([t[i, :, y:y + size, x:x + size] for i, (y, x) in zip(index, origins)])


def _occluders(x, source, size, generator):
    """Occlusion content (Sec. 4: "content from a different data source"): for each image a
    ``size`` x ``size`` crop at a random place of a random image of ``source`` (resized up
    when smaller)."""
    b = x.shape[0]
    dev = _gen_device(generator)
    src = source.to(device=x.device, dtype=x.dtype)
    if min(src.shape[2:]) < size:
        scale = size / min(src.shape[2:])
        src = F.interpolate(src, size=(math.ceil(src.shape[2] * scale), math.ceil(src.shape[3] * scale)),
                            mode="bilinear", align_corners=False)
    h, w = src.shape[2:]
    pick = torch.randint(src.shape[0], (b,), generator=generator, device=dev).tolist()
    ys = torch.randint(h - size + 1, (b,), generator=generator, device=dev).tolist()
    xs = torch.randint(w - size + 1, (b,), generator=generator, device=dev).tolist()
    return _crops(src, pick, list(zip(ys, xs)), size)


def _other_crops(x, source, origins, size):
    """The same canvas regions from other images: ``source[b % len(source)]`` if given, else
    the batch rolled by one (a single image: itself shifted by half its size)."""
    b = x.shape[0]
    if source is not None:
        src = source.to(device=x.device, dtype=x.dtype)
        return _crops(src, [i % src.shape[0] for i in range(b)], origins, size)
    if b > 1:
        return _crops(x, [(i - 1) % b for i in range(b)], origins, size)
    return _crops(x.roll((x.shape[2] // 2, x.shape[3] // 2), dims=(2, 3)), [0], origins, size)


def _colour_noise(shape, boxes, generator, device):
    """Smooth random colour noise in [0, 1] over each patch (a few colour blobs)."""
    b, c, h, w = shape
    cells = torch.rand(b, c, 4, 4, generator=generator, device=_gen_device(generator)).to(device)
    u, v = _patch_coords(boxes, h, w, device)
    return _read(cells, u, v, "bicubic").clamp(0, 1)


def check_settings(cfg) -> None:
    """One-line :class:`SsaeError` naming the first corruption setting (``cfg``: a
    CorruptionConfig) that :func:`corrupt` cannot use: an unknown method or shape, patch or band
    sizes outside ``0 < min <= max <= 1``, a negative number of patches."""
    for m in (cfg.method, *cfg.alternate):
        if m not in METHODS:
            raise SsaeError(f"unknown corruption method {m!r}; choose one of {', '.join(METHODS)}")
    if cfg.shape not in SHAPES:
        raise SsaeError(f"unknown corruption shape {cfg.shape!r}; choose one of {', '.join(SHAPES)}")
    if not 0 < cfg.band_min <= cfg.band_max <= 1:
        raise SsaeError(f"need 0 < corruption.band_min <= corruption.band_max <= 1, got {cfg.band_min}, {cfg.band_max}")
    if not 0 < cfg.patch_min <= cfg.patch_max <= 1:
        raise SsaeError(f"need 0 < corruption.patch_min <= corruption.patch_max <= 1, "
                        f"got {cfg.patch_min}, {cfg.patch_max}")
    if cfg.n_patches < 0:
        raise SsaeError(f"corruption.n_patches must be >= 0, got {cfg.n_patches}")


def _check(x, cfg, source, occluders=None):
    if x.dim() != 4:
        raise SsaeError(f"corrupt expects a B x C x H x W batch, got shape {tuple(x.shape)}")
    check_settings(cfg)
    if source is not None and (source.dim() != 4 or source.shape[1:] != x.shape[1:]):
        raise SsaeError(f"source {tuple(source.shape)} must be N x C x H x W like the batch {tuple(x.shape)}")
    if occluders is not None and (occluders.dim() != 4 or occluders.shape[1] != x.shape[1]):
        raise SsaeError(f"occluders {tuple(occluders.shape)} must be N x C x H' x W' with the batch's "
                        f"{x.shape[1]} channel(s)")


def corrupt(x: torch.Tensor, cfg, generator: torch.Generator | None, *, source: torch.Tensor | None = None,
            occluders: torch.Tensor | None = None, return_boxes: bool = False):
    """Corrupt a batch as in Figure 5. Returns ``(x_hat, mask)`` or ``(x_hat, mask, boxes)``.

    ``x``: B x C x H x W in [0, 1]. ``cfg``: a :class:`ssae.config.CorruptionConfig`.
    ``generator``: the only source of randomness (None: torch's global CPU generator).
    ``source``: optional N x C x H x W images for ``swap``: the same region of ``source[b % N]``
    (default: another image of the batch). ``occluders``: optional N x C x H' x W' images of
    another data source for ``occlusion``: a random region of a random one (default: colour
    noise).
    ``mask``: B x 1 x H x W in [0, 1], 0 outside the patches; with
    several patches it is ``1 - prod_k (1 - M_k)``. ``boxes``: B x n_patches x 4 long
    tensor ``(y0, x0, y1, x1)``, ends exclusive. Pixels where the mask is 0 are returned
    unchanged, bit for bit.

    The work per patch happens on a canvas: the P x P window (P = largest patch side in the
    batch) around each image's patch, so the cost scales with the patch area, not H x W.
    """
    _check(x, cfg, source, occluders)
    b, c, h, w = x.shape
    dev = _gen_device(generator)
    methods = (cfg.method, *cfg.alternate)
    choice = torch.randint(len(methods), (b,), generator=generator, device=dev).to(x.device)

    x_hat = x.clone()
    keep = torch.ones(b, 1, h, w, device=x.device, dtype=x.dtype)   # prod_k (1 - M_k)
    all_boxes = []
    for _ in range(cfg.n_patches):
        boxes = sample_boxes(b, h, w, cfg.patch_min, cfg.patch_max, generator)
        all_boxes.append(boxes)
        size = int((boxes[:, 2] - boxes[:, 0]).max())
        origins = [(min(y0, h - size), min(x0, w - size)) for y0, x0 in boxes[:, :2].tolist()]
        shift = torch.tensor([[y, x, y, x] for y, x in origins], dtype=torch.long)
        local = boxes - shift                                      # patch boxes inside the canvas
        x1 = _crops(x_hat, list(range(b)), origins, size)         # B x C x P x P
        if cfg.shape == "band":
            x2 = band_mask(local, size, size, cfg.band_min, cfg.band_max, generator, x.device).to(x.dtype)
        else:
            x2 = shape_mask(local, size, size, cfg.shape_sigma, generator, x.device).to(x.dtype)
        gain = 1 + _uniform(b, -cfg.brightness, cfg.brightness, generator, dev).to(x.device, x.dtype)
        x3 = torch.zeros_like(x1)
        m = torch.zeros_like(x2)
        for i, name in enumerate(methods):
            pick = choice == i
            if name == "none" or not bool(pick.any()):
                continue
            if name == "elastic":
                t = _elastic(x1, local, cfg.elastic_alpha, cfg.elastic_sigma, generator)
            elif name == "cutout":
                t = torch.zeros_like(x1)
            elif name == "swap":  # the same region of another image (the paper's y_S)
                t = _other_crops(x_hat, source, origins, size)
            elif occluders is not None:  # occlusion: a random region of another data source
                t = _occluders(x1, occluders, size, generator)
            else:  # occlusion without a source: procedural colour noise
                t = _colour_noise(x1.shape, local, generator, x.device)
            sel = pick[:, None, None, None]
            x3 = torch.where(sel, t, x3)
            m = torch.where(sel, x2, m)
        x3 = (x3 * gain[:, None, None, None]).clamp(0, 1)
        x4 = m * x3 + (1 - m) * x1                                 # Figure 5: X4 = X2 X3 + (1 - X2) X1
        win = _windows(range(b), origins, size, x.device)           # each image's canvas, written back
        x_hat[win[0], :, win[1], win[2]] = x4.permute(0, 2, 3, 1)
        keep[win[0], :, win[1], win[2]] = keep[win[0], :, win[1], win[2]] * (1 - m).permute(0, 2, 3, 1)
    mask = 1 - keep
    if return_boxes:
        boxes = torch.stack(all_boxes, dim=1) if all_boxes else torch.zeros(b, 0, 4, dtype=torch.long)
        return x_hat, mask, boxes
    return x_hat, mask


def random_rotation(x: torch.Tensor, generator: torch.Generator | None, max_degrees: float = 180.0) -> torch.Tensor:
    """Rotate each image by a random angle in ``[-max_degrees, max_degrees]`` about its centre.

    The paper rotates transistor images during training (Sec. 4); training applies this to
    the target before corruption. Corners that come from outside repeat the border.
    """
    b, _, h, w = x.shape
    angle = _uniform(b, -max_degrees, max_degrees, generator, _gen_device(generator)).to(x.device, x.dtype)
    theta = angle * math.pi / 180
    cos, sin = torch.cos(theta), torch.sin(theta)
    # affine_grid works in [-1, 1] coordinates; correct for the aspect ratio so the rotation is rigid.
    a = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    a[:, 0, 0], a[:, 0, 1] = cos, -sin * h / w
    a[:, 1, 0], a[:, 1, 1] = sin * w / h, cos
    grid = F.affine_grid(a, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
