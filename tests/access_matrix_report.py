"""Print the access matrix (routes × personas) as Markdown: `python -m tests.access_matrix_report`.

Runs tests/test_access_matrix.py (with the environment the suite needs: DATABASE_URL,
TEST_DATABASE_NAME, CELERY_BROKER_URL as for any test run; Orthanc is started for the routes that
stream from it), then prints the table it observed. `--out PATH` also keeps it in a file. The exit
status is pytest's: a matrix printed from a failing run says so above the table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "matrix.md"
        os.environ["JOLIBA_ACCESS_MATRIX"] = str(path)
        code = pytest.main(["-q", "-p", "no:cacheprovider", str(HERE / "test_access_matrix.py")])
        if not path.exists():
            print("the matrix was not written (the module did not run to its end)", file=sys.stderr)
            return int(code) or 1
        text = path.read_text(encoding="utf-8")
    if code:
        print(
            f"\nWARNING: the test run failed (pytest exit {int(code)}): the matrix shows what was observed.\n"
        )
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
