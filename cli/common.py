"""What every ``gi`` command shares: one-line errors, notices, ``--json`` output, list arguments."""

import functools
import json
import math

import typer

from gi_numba.batch import image_files
from gi_numba.errors import GIError
from gi_numba.limits import DEFAULT_MAX_PIXELS
from gi_numba.recipes import DEFAULT_RECIPE, RECIPES

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def fail(message):
    """Print one error line and exit with the user-error code."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USER_ERROR)


def user_errors(command):
    """Turn :class:`GIError` and running out of memory into one stderr line and exit code 2, Ctrl-C into 130.

    Ctrl-C is handled here, inside the command, because typer turns a
    ``KeyboardInterrupt`` into a bare exit code before the caller sees it.
    """
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GIError as exc:
            fail(str(exc))
        except MemoryError:
            fail("out of memory: the image or the requested output is too large for this machine")
        except KeyboardInterrupt as exc:
            typer.echo(f"interrupted: {exc}" if str(exc) else "interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
    return wrapper


#: The ``--recipe`` option of every command that trains.
RECIPE_OPTION = typer.Option(None, "--recipe", help=f"Training recipe: {' or '.join(RECIPES)} (the publication's "
                             f"schedule, bit for bit) [{DEFAULT_RECIPE} for gi++].")
#: The ``--iterations`` option of every command that trains.
ITERATIONS_OPTION = typer.Option(None, "--iterations", "-i", help="Training iterations [the recipe's: "
                                 + ", ".join(f"{r.name} {r.fit.iterations}" for r in RECIPES.values()) + "].")

#: The ``--max-pixels`` option every command that reads an image, a model or a ``.gi`` file takes.
MAX_PIXELS_OPTION = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", min=1,
                                 help="Refuse images, models and files larger than this many pixels.")


def notice(message):
    typer.echo(f"note: {message}", err=True)


def emit(as_json, result, lines, to_stderr=False):
    """Print ``result`` as one JSON object, or ``lines`` for a person (on stderr when stdout carries a file)."""
    if as_json:
        typer.echo(json.dumps({k: _jsonable(v) for k, v in result.items()}))
    else:
        for line in lines:
            typer.echo(line, err=to_stderr)


def _jsonable(value):
    """``value`` with every NaN or infinity (at any depth) replaced by ``None``, as JSON has none."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def parse_list(text, kind, option):
    """``"1,2,3"`` -> ``[1, 2, 3]`` (``kind`` converts each part); a bad part is a user error."""
    try:
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        fail(f"{option} wants values separated by commas, got {text!r}")
    if not values:
        fail(f"{option} is empty")
    return values


def image_paths(paths):
    """The given image files, with each folder replaced by the images inside it."""
    files = []
    for path in paths:
        if path.is_dir():
            files += image_files(path)
        elif path.exists():
            files.append(path)
        else:
            fail(f"{path}: no such file or folder")
    if not files:
        fail("no images given (the folders hold none)")
    return files
