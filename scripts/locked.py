"""Read one package's pin from uv.lock: `locked.py version NAME` or `locked.py sdist-sha256 NAME`."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def main() -> int:
    what, name = sys.argv[1], sys.argv[2]
    lock = tomllib.loads((Path(__file__).resolve().parents[1] / "uv.lock").read_text())
    package = next((p for p in lock["package"] if p["name"] == name), None)
    if package is None:
        print(f"{name} is not in uv.lock", file=sys.stderr)
        return 1
    if what == "version":
        print(package["version"])
    elif what == "sdist-sha256":
        print(package["sdist"]["hash"].removeprefix("sha256:"))
    else:
        print(f"unknown query {what!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
