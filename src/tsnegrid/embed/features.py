"""Feature mixes: what looks alike to a person is partly colour and layout, which an ImageNet
CNN mostly ignores.

``colour_descriptor`` is a small hand-made vector (a 4x4 colour layout in CIELAB plus a coarse
hue/lightness histogram); ``MixedEmbedder`` wraps an image model and returns the semantic vector,
the colour vector, or both concatenated (each part scaled to unit length, colour weighted). Its
``model_id`` names the mix. For ``both`` the embedding cache keeps the two parts as the models
gave them (``cache_id``, the same for every weight) and ``finish`` mixes them after the cache,
so the model's own vector stays available to its classifier head (``tsnegrid.concepts``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageCms

from tsnegrid.embed.base import Embedder
from tsnegrid.errors import InputError
from tsnegrid.settings import FEATURES

#: Bumped whenever the descriptor changes, so cached vectors of the old one are not reused.
COLOUR_VERSION = 1
LAYOUT_SIDE = 4
HUE_BINS = 12
LIGHT_BINS = 4
COLOUR_DIMS = 3 * LAYOUT_SIDE**2 + HUE_BINS * LIGHT_BINS + LIGHT_BINS
_SIDE = 32

_SRGB_TO_LAB = ImageCms.buildTransformFromOpenProfiles(
    ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")


def colour_descriptor(image: Image.Image) -> NDArray[np.float32]:
    """``COLOUR_DIMS`` values: mean L*a*b* of each cell of a 4x4 layout (scaled to about
    [-1, 1]), then the share of pixels per (hue, lightness) bin of the saturated pixels and per
    lightness bin of the grey ones."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")  # convert copies even RGB
    small = _shrunk(rgb).resize((_SIDE, _SIDE), Image.Resampling.BILINEAR)
    raw = np.asarray(ImageCms.applyTransform(small, _SRGB_TO_LAB), dtype=np.float32)
    lab = (raw - np.array([0.0, 128.0, 128.0], np.float32)) / np.array([255.0, 128.0, 128.0],
                                                                        np.float32)
    step = _SIDE // LAYOUT_SIDE
    layout = lab.reshape(LAYOUT_SIDE, step, LAYOUT_SIDE, step, 3).mean(axis=(1, 3)).ravel()
    hsv = np.asarray(small.convert("HSV"), dtype=np.float32) / 255.0
    h, s, v = hsv[..., 0].ravel(), hsv[..., 1].ravel(), hsv[..., 2].ravel()
    light = np.minimum((v * LIGHT_BINS).astype(np.int64), LIGHT_BINS - 1)
    hue = np.minimum((h * HUE_BINS).astype(np.int64), HUE_BINS - 1)
    chromatic = s * v > 0.15
    hist = np.bincount(hue[chromatic] * LIGHT_BINS + light[chromatic],
                       minlength=HUE_BINS * LIGHT_BINS)
    grey = np.bincount(light[~chromatic], minlength=LIGHT_BINS)
    counts = np.concatenate([hist, grey]).astype(np.float32) / h.size
    return np.concatenate([layout, np.sqrt(counts)]).astype(np.float32)


def _shrunk(image: Image.Image) -> Image.Image:
    """The image box-reduced along any side over ``_SIDE * 8`` pixels: resizing 1 x N straight
    to 32 x 32 costs about 27 bytes a row (4.8 GB at N = 178 million); sides up to 256 (every
    photo the loader reduces for a 224-pixel model) are untouched."""
    fx, fy = (max(1, side // (_SIDE * 8)) for side in image.size)
    return image.reduce((fx, fy)) if fx > 1 or fy > 1 else image


def _unit(v: NDArray[np.float32]) -> NDArray[np.float32]:
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.maximum(norm, 1e-12)).astype(np.float32)


def check_features(features: str, weight: float) -> None:
    """Raise ``InputError`` for an unknown mix or a weight outside (0, 10]."""
    if features not in FEATURES:
        raise InputError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    if not 0 < weight <= 10:
        raise InputError(f"colour_weight must be in (0, 10], got {weight}")


def cached_id(model_id: str, features: str) -> str:
    """Cache key of the vectors a mix stores: the raw parts, so any weight reuses them."""
    if features == "both":
        return f"{model_id}+colour-v{COLOUR_VERSION}-parts"
    return mix_id(model_id, features, 1.0)


def mix_id(model_id: str, features: str, weight: float) -> str:
    """Cache key of a mix: the model id alone for ``semantic`` (vectors unchanged)."""
    if features == "semantic":
        return model_id
    colour = f"colour-v{COLOUR_VERSION}"
    return colour if features == "colour" else f"{model_id}+{colour}x{weight:g}"


class MixedEmbedder:
    """Wraps an embedder; ``preprocess`` packs the model input and the colour vector into one
    flat array, ``embed_batch`` unpacks them and returns the parts as computed (what the cache
    keeps, under ``cache_id``), ``finish`` turns stored rows into the mix."""

    def __init__(self, base: Embedder | None, features: str, weight: float) -> None:
        check_features(features, weight)
        if base is None and features != "colour":
            raise InputError(f"features {features!r} needs an image model")
        self.base = base
        self.features = features
        self.weight = weight
        self.model_id = mix_id(base.model_id if base is not None else "", features, weight)
        self.cache_id = cached_id(base.model_id if base is not None else "", features)
        self._shape: tuple[int, ...] | None = None

    @property
    def input_size(self) -> int:
        return self.base.input_size if self.base is not None else _SIDE

    def preprocess(self, image: Image.Image) -> NDArray[np.float32]:
        colour = colour_descriptor(image)
        if self.base is None or self.features == "colour":
            return colour
        model_input = self.base.preprocess(image)
        self._shape = model_input.shape
        return np.concatenate([model_input.ravel(), colour])

    def embed_batch(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        colour = batch[:, -COLOUR_DIMS:]
        if self.base is None or self.features == "colour":
            return np.ascontiguousarray(colour, dtype=np.float32)
        assert self._shape is not None
        semantic = self.base.embed_batch(batch[:, :-COLOUR_DIMS].reshape(len(batch),
                                                                         *self._shape))
        return np.concatenate([semantic, colour], axis=1).astype(np.float32, copy=False)

    def finish(self, stored: NDArray[np.float32]) -> NDArray[np.float32]:
        """Stored rows to the mix, in place for ``both``: each part at unit length, the colour
        part times the weight."""
        if self.base is None or self.features == "colour" or not len(stored):
            return stored
        d = stored.shape[1] - COLOUR_DIMS
        for s in range(0, len(stored), 65536):  # bounded temporaries at any N
            rows = stored[s:s + 65536]
            rows[:, :d] = _unit(rows[:, :d])
            rows[:, d:] = self.weight * _unit(rows[:, d:])
        return stored

    def semantic(self, stored: NDArray[np.float32]) -> tuple[str, NDArray[np.float32]] | None:
        """The image model's id and its own vectors (a view of the stored rows)."""
        if self.base is None or self.features == "colour":
            return None
        return self.base.model_id, stored[:, :stored.shape[1] - COLOUR_DIMS]
