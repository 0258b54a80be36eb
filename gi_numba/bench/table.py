"""Result tables of the benchmarks: a CSV that grows one row at a time and resumes after a stop."""

import csv
import io
from pathlib import Path

from ..errors import GIError
from ..fileio import write_atomically


class ResultTable:
    """Rows of one benchmark, keyed by the columns ``key``; the CSV is rewritten atomically after each row.

    Opening an existing CSV loads its rows, so a rerun skips what is done
    (:meth:`has`): a long benchmark can be interrupted and resumed, or split
    over processes that write separate CSVs (read together with
    :func:`read_rows`).
    """

    def __init__(self, path, fields, key, text_fields):
        self.path, self.fields, self.key, self.text_fields = Path(path), tuple(fields), tuple(key), text_fields
        self.rows = read_rows([self.path], self.fields, text_fields) if self.path.exists() else []
        self._keys = {self._key_of(row) for row in self.rows}

    def _key_of(self, row):
        return tuple(str(row[name]) for name in self.key)

    def has(self, *key):
        return tuple(str(part) for part in key) in self._keys

    def add(self, row):
        self.rows.append(row)
        self._keys.add(self._key_of(row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, self.fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        write_atomically(self.path, buffer.getvalue().encode())


def read_header(path):
    """The column names of a CSV (``GIError`` if it cannot be read)."""
    try:
        with open(path, newline="") as handle:
            return tuple(next(csv.reader(handle), ()))
    except FileNotFoundError:
        raise GIError(f"{path}: no such file") from None
    except (OSError, ValueError, csv.Error):
        raise GIError(f"{path}: not a result CSV of gi bench") from None


def read_rows(paths, fields, text_fields):
    """Rows of one or more CSVs with the columns ``fields``; those not in ``text_fields`` become floats."""
    rows = []
    for path in paths:
        try:
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle)
                if not set(fields) <= set(reader.fieldnames or ()):
                    raise ValueError("missing columns")
                for row in reader:
                    rows.append({k: (row[k] if k in text_fields else float(row[k])) for k in fields})
        except FileNotFoundError:
            raise GIError(f"{path}: no such file") from None
        except (ValueError, TypeError, csv.Error):
            raise GIError(f"{path}: not a result CSV of gi bench") from None
    return rows
