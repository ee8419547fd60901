"""Raw-pixel baseline: a small thumbnail's pixels as the vector."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps


class PixelEmbedder:
    """32 x 32 RGB thumbnail, flattened to 3,072 values in [0, 1]."""

    input_size = 32

    def __init__(self, side: int = 32) -> None:
        self.input_size = side
        self.model_id = f"pixels-{side}"

    def preprocess(self, image: Image.Image) -> NDArray[np.float32]:
        im = ImageOps.fit(image, (self.input_size, self.input_size), Image.Resampling.BILINEAR)
        return (np.asarray(im, dtype=np.float32) / 255.0).transpose(2, 0, 1)

    def embed_batch(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return batch.reshape(len(batch), -1).astype(np.float32)
