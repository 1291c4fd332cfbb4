#!/usr/bin/env python3
"""Build dist/tykky.pyz: the whole tool with its dependencies in one file (a shiv zipapp).

shiv packs the packages (reproducibly: same inputs, same bytes); its bootstrap is then replaced
by zipapp/main.py (a per-user extraction cache, fast warm starts) and its shebang line by
zipapp/preamble.sh, which finds a suitable Python on the machine it runs on.

One archive runs on every Python from the oldest supported (requires-python) on: its dependencies
are pinned to releases that still support that one, resolved for it as wheels, and carry no
compiled extension module (PyYAML then uses its pure-Python parser). Backports of standard
modules go into their own directory, which zipapp/main.py puts on sys.path only on the Pythons
that lack the module, so they never shadow a later Python's standard library.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import List, Tuple

HERE = Path(__file__).resolve().parent
DEPENDENCIES = ["PyYAML==6.0.1"]
# Python 3.6 has no dataclasses module (3.7 brought it).
BACKPORTS = ["dataclasses==0.8"]
BACKPORTS_DIRECTORY = "backports-py36"  # zipapp/main.py adds it to sys.path on 3.6
# --with-conda bundles the conda solver (25 MB, Python >= 3.10); without it, conda-containerize
# installs it once per user (see src/tykky/conda_backend.py).
CONDA_DEPENDENCIES = ["py-rattler==0.28.0"]
SOURCE_DATE_EPOCH = "315532800"


def minimum_python() -> Tuple[int, int]:
    """The oldest Python the tool supports, from pyproject.toml's requires-python."""
    match = re.search(r'requires-python\s*=\s*">=\s*3\.(\d+)"', (HERE / "pyproject.toml").read_text())
    if not match:
        raise SystemExit("pyproject.toml has no requires-python = \">=3.X\"")
    return 3, int(match.group(1))


def preamble(pinned: str) -> bytes:
    if pinned and (not os.path.isabs(pinned) or "'" in pinned or "\n" in pinned):
        raise SystemExit(f"--python {pinned!r}: give an absolute path without quotes")
    text = (HERE / "zipapp" / "preamble.sh").read_text()
    text = text.replace("@PINNED_PYTHON@", pinned).replace("@MINIMUM_MINOR@", str(minimum_python()[1]))
    return text.encode()


def main_module(build_id: str) -> bytes:
    text = (HERE / "zipapp" / "main.py").read_text()
    for pattern, value in ((r"^MINIMUM = \(3, \d+\)$", f"MINIMUM = {minimum_python()}"),
                           (r'^BUILD_ID = ".*"$', f'BUILD_ID = "{build_id}"')):
        text, count = re.subn(pattern, value, text, count=1, flags=re.MULTILINE)
        if count != 1:
            raise SystemExit(f"zipapp/main.py has no line matching {pattern}")
    return text.encode()


def assemble(packed: Path, output: Path, pinned: str) -> None:
    """The preamble, then shiv's archive with our __main__ instead of shiv's bootstrap."""
    with zipfile.ZipFile(packed) as source:
        environment = json.loads(source.read("environment.json"))
        kept: List[Tuple[zipfile.ZipInfo, bytes]] = [
            (info, source.read(info)) for info in source.infolist()
            if not info.filename.startswith("_bootstrap/") and info.filename != "__main__.py"]
        main_info = zipfile.ZipInfo("__main__.py", date_time=source.getinfo("environment.json").date_time)
    main_info.compress_type = zipfile.ZIP_DEFLATED
    main_info.external_attr = 0o100644 << 16
    with output.open("wb") as handle:
        handle.write(preamble(pinned))
        with zipfile.ZipFile(handle, "w") as archive:
            for info, data in kept:
                archive.writestr(info, data)
            archive.writestr(main_info, main_module(environment["build_id"]))
    output.chmod(0o755)


def pip_install(target: Path, *arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--disable-pip-version-check",
                    "--target", str(target), *arguments], check=True)


def install_packages(site: Path, with_conda: bool) -> None:
    """Pure-Python wheels for the oldest supported Python, then tykky itself, then the solver."""
    oldest = ".".join(map(str, minimum_python()))
    # --no-deps: the lists are complete. pip checks requires-python against the Python running
    # it, which a backport for an older one fails.
    pip_install(site, "--no-deps", "--only-binary=:all:", "--python-version", oldest, *DEPENDENCIES)
    pip_install(site / BACKPORTS_DIRECTORY, "--no-deps", "--only-binary=:all:", "--python-version", oldest,
                "--ignore-requires-python", *BACKPORTS)
    for extension in sorted(site.rglob("*.so")):
        extension.unlink()  # built for one Python only; the package falls back to pure Python
    pip_install(site, "--no-deps", str(HERE))
    if with_conda:
        pip_install(site, *CONDA_DEPENDENCIES)


def build(output: Path, pinned: str, with_conda: bool = False) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        site = Path(staging) / "site"
        install_packages(site, with_conda)
        for leftover in site.rglob("*.dist-info/RECORD"):
            leftover.unlink()  # lists absolute build paths and hashes: not reproducible
        for cache in site.rglob("__pycache__"):
            shutil.rmtree(cache)
        packed, temporary = Path(staging) / "packed.pyz", output.with_suffix(".tmp")
        subprocess.run([sys.executable, "-m", "shiv", "--site-packages", str(site), "--reproducible",
                        "--compressed", "-e", "tykky.cli:main", "-p", "/bin/sh", "-o", str(packed)],
                       check=True, env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
        assemble(packed, temporary, pinned)
        os.replace(temporary, output)
    print(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-o", "--output", type=Path, default=HERE / "dist" / "tykky.pyz")
    parser.add_argument("--python", default="", metavar="PATH",
                        help="pin an interpreter: used whenever it exists where tykky.pyz runs")
    parser.add_argument("--with-conda", action="store_true",
                        help="bundle py-rattler, the conda solver (+25 MB; conda mode then needs no download)")
    arguments = parser.parse_args()
    build(arguments.output, arguments.python, arguments.with_conda)


if __name__ == "__main__":
    main()
