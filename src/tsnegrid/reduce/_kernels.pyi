import numpy as np
from numpy.typing import NDArray

def perplexity_rows(dist: NDArray[np.float64], perplexity: float,
                    out: NDArray[np.float64]) -> int: ...
def gradient(y: NDArray[np.float64], indptr: NDArray[np.int64], indices: NDArray[np.int64],
             p: NDArray[np.float64], exaggeration: float, theta: float,
             grad: NDArray[np.float64]) -> None: ...
def descend(y: NDArray[np.float64], indptr: NDArray[np.int64], indices: NDArray[np.int64],
            p: NDArray[np.float64], steps: int, exaggeration: float, momentum: float,
            learning_rate: float, theta: float, min_gain: float, max_step: float,
            update: NDArray[np.float64], gains: NDArray[np.float64],
            grad: NDArray[np.float64]) -> None: ...
def step(y: NDArray[np.float64], grad: NDArray[np.float64], momentum: float,
         learning_rate: float, min_gain: float, max_step: float, update: NDArray[np.float64],
         gains: NDArray[np.float64]) -> None: ...
def fft_spread(y: NDArray[np.float64], x0: float, y0: float, h: float, boxes: int,
               points: int, base: NDArray[np.int64], wx: NDArray[np.float64],
               wy: NDArray[np.float64], grid: NDArray[np.float64]) -> None: ...
def fft_gather(y: NDArray[np.float64], indptr: NDArray[np.int64], indices: NDArray[np.int64],
               p: NDArray[np.float64], exaggeration: float, phi: NDArray[np.float64],
               base: NDArray[np.int64], wx: NDArray[np.float64], wy: NDArray[np.float64],
               grad: NDArray[np.float64]) -> float: ...
