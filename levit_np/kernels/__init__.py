"""Kernels: `reference` (plain NumPy, the spec), `fold` (BatchNorm folding), `fast` and `gemm` (the Numba path),
and `backends`, the registry that names them. Every backend provides the kernels of `contract`."""
