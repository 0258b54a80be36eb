"""Command-line interface of gi-numba (installed as ``gi_numba.cli``, console script ``gi``)."""
