"""The int8 EfficientNet-Lite0 (``--model lite0-int8``): ONNX Runtime's static quantization of
the shipped float model, calibrated on images anyone can regenerate.

Run ``python -m tsnegrid.embed.quantize`` (needs ``onnx`` and ``scikit-image``: tsnegrid[test])
to write ``tsnegrid.embed.lite0.int8_path()``. Calibration: ``CROPS`` seeded square crops of the
colour photos that scikit-image ships in its package (``skimage.data``: nothing is downloaded)
and every 64th emoji of the demo (demo/emoji-1024, Noto Emoji, Apache-2.0), made into the
model's input as the build does. Settings: QDQ format, per-channel int8 weights with
``reduce_range`` (7 bits: x86 CPUs without VNNI add pairs of uint8 x int8 products in 16 bits,
which saturate with 8-bit weights; measured cosine to the float vectors 0.84 without, 0.96
with), uint8 activations, ranges from the 99.99th percentile of the calibration activations.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from tsnegrid.embed.base import to_unit_range
from tsnegrid.errors import MissingDependencyError

log = logging.getLogger(__name__)

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "ihc.png", "color.png", "horse.png")
"""scikit-image's bundled colour photos used for calibration."""
CROPS = 48
DEMO = Path(__file__).resolve().parents[3] / "demo" / "emoji-1024" / "images"
PERCENTILE = 99.99


def calibration_inputs(demo: Path = DEMO) -> Iterator[NDArray[np.float32]]:
    """The calibration images as model inputs (3 x 224 x 224), the same on every run."""
    try:
        import skimage.data
    except ImportError as exc:
        raise MissingDependencyError("scikit-image", extra="test") from exc
    photos = [Image.open(Path(skimage.data.data_dir) / n).convert("RGB") for n in PHOTOS]
    rng = np.random.default_rng(0)
    for k in range(CROPS):
        im = photos[k % len(photos)]
        w, h = im.size
        side = int(min(w, h) * rng.uniform(0.5, 1.0))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        yield to_unit_range(im.crop((x, y, x + side, y + side)), 224)
    for path in sorted(demo.glob("*.png"))[::64]:
        rgba = Image.open(path).convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        yield to_unit_range(Image.alpha_composite(white, rgba).convert("RGB"), 224)


def quantize(source: Path, target: Path, demo: Path = DEMO) -> None:
    """Write the int8 model of the float ``source`` to ``target``."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise MissingDependencyError("onnx", extra="export") from exc
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "pre.onnx"
        quant_pre_process(str(source), str(ready))
        name = ort.InferenceSession(str(ready), providers=["CPUExecutionProvider"]
                                    ).get_inputs()[0].name
        feeds = iter([{name: x[None]} for x in calibration_inputs(demo)])

        class Reader(CalibrationDataReader):
            def get_next(self) -> dict[str, NDArray[np.float32]] | None:
                return next(feeds, None)

        quantize_static(str(ready), str(target), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": PERCENTILE})


def main() -> None:
    from tsnegrid.embed.lite0 import int8_path, shipped_path

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else int8_path()
    quantize(shipped_path(), target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
