#!/usr/bin/env python3
"""Build dist/tykky.pyz: the whole tool with its dependencies in one file (a shiv zipapp).

Same inputs give the same bytes (--reproducible). Dependencies are pinned to releases that
still support the oldest Python the tool runs on.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEPENDENCIES = ["click==8.1.8", "PyYAML==6.0.2"]


def build(output: Path, python: str) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        site = Path(staging) / "site"
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
                        "--disable-pip-version-check", "--target", str(site), *DEPENDENCIES, str(HERE)],
                       check=True)
        for leftover in site.glob("*.dist-info/RECORD"):
            leftover.unlink()  # lists absolute build paths and hashes: not reproducible
        for cache in site.rglob("__pycache__"):
            shutil.rmtree(cache)
        temporary = output.with_suffix(".tmp")
        subprocess.run([sys.executable, "-m", "shiv", "--site-packages", str(site), "--reproducible",
                        "--compressed", "--no-modify", "-e", "tykky.cli:main", "-p", python,
                        "-o", str(temporary)], check=True, env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"})
        os.replace(temporary, output)
    print(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", type=Path, default=HERE / "dist" / "tykky.pyz")
    parser.add_argument("--python", default="/usr/bin/env python3", help="the zipapp's interpreter line")
    arguments = parser.parse_args()
    build(arguments.output, arguments.python)


if __name__ == "__main__":
    main()
