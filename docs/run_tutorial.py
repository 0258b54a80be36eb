"""Run every Python block of docs/tutorial.md, in order, in one namespace.

    python docs/run_tutorial.py            # in docs/: rewrites docs/img/tutorial/
    python docs/run_tutorial.py --in DIR   # elsewhere (the test suite uses a temporary folder)

Blocks write their pictures below ``img/tutorial/`` of the folder they run in
(the first block creates it).
"""

import argparse
import contextlib
import os
import re
import sys
from pathlib import Path

TUTORIAL = Path(__file__).with_name("tutorial.md")
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def code_blocks(path=TUTORIAL):
    """The source of each Python code block of the tutorial, in order."""
    return _BLOCK.findall(Path(path).read_text())


def run(folder):
    """Execute all blocks with ``folder`` as the working directory; return their namespace."""
    folder = Path(folder)
    namespace = {"__name__": "tutorial"}
    previous = Path.cwd()
    os.chdir(folder)
    try:
        for number, source in enumerate(code_blocks(), 1):
            exec(compile(source, f"{TUTORIAL.name}, block {number}", "exec"), namespace)
    finally:
        os.chdir(previous)
    return namespace


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in", dest="folder", type=Path, default=TUTORIAL.parent)
    with contextlib.suppress(KeyboardInterrupt):
        run(parser.parse_args().folder)
    sys.exit(0)
