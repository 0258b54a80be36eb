"""``python -m gi_numba``: the ``gi`` command."""

from gi_numba.cli.main import main

main()
