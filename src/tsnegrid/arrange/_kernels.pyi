import numpy as np
from numpy.typing import NDArray

def hungarian(cost: NDArray[np.float64], k: int) -> NDArray[np.int64]: ...
def swap_pass(board: NDArray[np.int64], pos: NDArray[np.int64], x: NDArray[np.float32],
              knn: NDArray[np.int64], movable: NDArray[np.uint8], rows: int, cols: int,
              reach: int, n_steps: int, k: int, wdiag: float, seed: int) -> int: ...
def smooth_pass(board: NDArray[np.int64], pos: NDArray[np.int64], x: NDArray[np.float32],
                fmap: NDArray[np.float32], rows: int, cols: int, reach: int, n_groups: int,
                k: int, seed: int) -> None: ...
def sparse_auction(indptr: NDArray[np.int64], indices: NDArray[np.int64],
                   cost: NDArray[np.float64], n: int, prices: NDArray[np.float64],
                   eps_start: float, eps_end: float, factor: float,
                   jump: float) -> NDArray[np.int64]: ...
