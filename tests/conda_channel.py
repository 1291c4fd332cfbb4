"""A local conda channel built from scratch for the conda-mode tests, indexed with py-rattler.

Packages (all real conda packages, .tar.bz2 with info/index.json and info/paths.json):
  libtykkyhello      a shared library (C, built with gcc)
  tykky-hello        an executable linked against it through a prefix-relative rpath
  tykky-where        a script and a data file with a text prefix placeholder
  tykky-activate     an etc/conda/activate.d script that exports a variable and extends PATH
  tykky-data         noarch data, depending on tykky-where
  tykky-postlink     a post-link script, run by the build inside the container
  tykky-extra        a small program that an update adds
  python             the CPython of scripts/build-test-python.sh, which runs from any prefix
                     (text placeholders in scripts and sysconfig, a binary one in libpython)
  pip                noarch: python, made from the wheel CPython bundles (entry points pip, pip3)
  tykky-pylib        noarch: python module depending on tykky-data
  conda, mamba       stand-ins for the real ones (no channel here carries them): print who they
                     are and where they run, enough to test that --mamba provides them
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

CPYTHON_PREFIX = Path(os.environ.get("TYKKY_TEST_CPYTHON",
                                     "/opt/tykky-ci/cpython/placeholder_placeholder_placeholder_placeholder"))
PLACEHOLDER = "/opt/conda-placeholder_placeholder_placeholder_placeholder_placeholder"
TIMESTAMP = 1700000000000
SUBDIR = "linux-64"

LIBRARY_SOURCE = r"""
#include <stdio.h>
const char *tykky_hello_message(void) { return "hello from libtykkyhello"; }
"""
PROGRAM_SOURCE = r"""
#include <stdio.h>
const char *tykky_hello_message(void);
int main(int argc, char **argv) {
    printf("%s (%d arguments)\n", tykky_hello_message(), argc - 1);
    return 0;
}
"""


@dataclass
class Package:
    name: str
    version: str
    files: Dict[str, bytes] = field(default_factory=dict)
    executables: Tuple[str, ...] = ()
    symlinks: Dict[str, str] = field(default_factory=dict)
    depends: Tuple[str, ...] = ()
    noarch: Optional[str] = None
    text_prefix: Tuple[str, ...] = ()
    binary_prefix: Tuple[str, ...] = ()
    placeholder: str = PLACEHOLDER
    entry_points: Tuple[str, ...] = ()

    @property
    def subdir(self) -> str:
        return "noarch" if self.noarch else SUBDIR

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-0.tar.bz2"


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _path_entry(package: Package, path: str, data: bytes) -> Dict:
    entry = {"_path": path, "path_type": "hardlink", "sha256": hashlib.sha256(data).hexdigest(),
             "size_in_bytes": len(data)}
    if path in package.text_prefix or path in package.binary_prefix:
        entry.update(prefix_placeholder=package.placeholder,
                     file_mode="text" if path in package.text_prefix else "binary")
    return entry


def _metadata(package: Package) -> Dict[str, bytes]:
    index = {"name": package.name, "version": package.version, "build": "0", "build_number": 0,
             "depends": list(package.depends), "subdir": package.subdir, "timestamp": TIMESTAMP,
             "license": "MIT"}
    if package.noarch:
        index["noarch"] = package.noarch
    else:
        index.update(arch="x86_64", platform="linux")
    paths = [_path_entry(package, path, data) for path, data in sorted(package.files.items())]
    paths += [{"_path": path, "path_type": "softlink", "sha256": hashlib.sha256(target.encode()).hexdigest(),
               "size_in_bytes": len(target)} for path, target in sorted(package.symlinks.items())]
    meta = {"info/index.json": json.dumps(index, indent=1).encode(),
            "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}, indent=1).encode(),
            "info/files": "".join(p + "\n" for p in sorted(list(package.files) + list(package.symlinks))).encode()}
    if package.noarch == "python":
        link = {"noarch": {"type": "python", "entry_points": list(package.entry_points)},
                "package_metadata_version": 1}
        meta["info/link.json"] = json.dumps(link).encode()
    return meta


def write_package(package: Package, channel: Path) -> Path:
    folder = channel / package.subdir
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / package.filename
    with tarfile.open(target, "w:bz2", compresslevel=1) as tar:
        for name, data in sorted(_metadata(package).items()):
            _add(tar, name, data)
        for path, data in sorted(package.files.items()):
            _add(tar, path, data, 0o755 if path in package.executables else 0o644)
        for path, link_target in sorted(package.symlinks.items()):
            info = tarfile.TarInfo(path)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, link_target, 0
            tar.addfile(info)
    return target


def _compile(workdir: Path) -> Tuple[bytes, bytes]:
    (workdir / "lib.c").write_text(LIBRARY_SOURCE)
    (workdir / "main.c").write_text(PROGRAM_SOURCE)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(workdir / "libtykkyhello.so"), str(workdir / "lib.c")],
                   check=True)
    subprocess.run(["gcc", "-o", str(workdir / "tykky-hello"), str(workdir / "main.c"), f"-L{workdir}",
                    "-ltykkyhello", "-Wl,-rpath,$ORIGIN/../lib"], check=True)
    return (workdir / "libtykkyhello.so").read_bytes(), (workdir / "tykky-hello").read_bytes()


def native_packages(workdir: Path) -> List[Package]:
    library, program = _compile(workdir)
    return [
        Package("libtykkyhello", "1.0", {"lib/libtykkyhello.so": library}),
        Package("tykky-hello", "1.0", {"bin/tykky-hello": program}, executables=("bin/tykky-hello",),
                depends=("libtykkyhello >=1.0",)),
    ]


def script_packages() -> List[Package]:
    where = f"#!/bin/sh\necho \"installed at {PLACEHOLDER}\"\ncat \"{PLACEHOLDER}/share/tykky-where/where.txt\"\n"
    activate = ('export TYKKY_ACTIVATED="activated in $CONDA_PREFIX"\n'
                'export TYKKY_ACTIVATED_FOR="${TYKKY_LAUNCH_VALUE:-unset}"\n'
                'export PATH="$CONDA_PREFIX/libexec/tykky-activate:$PATH"\n')
    postlink = 'echo "post-link of $PKG_NAME ran in $PREFIX" > "$PREFIX/share/tykky-postlink.txt"\n'
    return [
        Package("tykky-where", "1.0", {"bin/tykky-where": where.encode(),
                                       "share/tykky-where/where.txt": f"data of {PLACEHOLDER}\n".encode()},
                executables=("bin/tykky-where",), noarch="generic",
                text_prefix=("bin/tykky-where", "share/tykky-where/where.txt")),
        Package("tykky-activate", "1.0", {"etc/conda/activate.d/tykky-activate.sh": activate.encode(),
                                          "libexec/tykky-activate/tykky-activated": b"#!/bin/sh\necho on PATH\n"},
                executables=("libexec/tykky-activate/tykky-activated",), noarch="generic"),
        Package("tykky-data", "2.0", {"share/tykky-data/data.txt": b"noarch data\n"}, noarch="generic",
                depends=("tykky-where",)),
        Package("tykky-postlink", "1.0", {"bin/.tykky-postlink-post-link.sh": postlink.encode()}, noarch="generic"),
        Package("tykky-extra", "1.0", {"bin/tykky-extra": b"#!/bin/sh\necho extra package here\n"},
                executables=("bin/tykky-extra",), noarch="generic"),
    ] + [versioned(version) for version in ("1.0", "2.0")]


def versioned(version: str) -> Package:
    """Each version has a data directory of its own: upgrading removes the old one."""
    major = version.split(".")[0]
    return Package("tykky-versioned", version,
                   {"bin/tykky-versioned": f"#!/bin/sh\necho version {version}\n".encode(),
                    f"share/tykky-versioned/v{major}/data.txt": f"data of {version}\n".encode()},
                   executables=("bin/tykky-versioned",), noarch="generic")


def stand_in(name: str) -> Package:
    script = (f"#!/bin/sh\n# A stand-in for {name}: the test channel has no real one.\n"
              f"echo \"{name} stand-in at {PLACEHOLDER}, CONDA_PREFIX=$CONDA_PREFIX, args: $*\"\n")
    return Package(name, "99.0", {f"bin/{name}": script.encode()}, executables=(f"bin/{name}",),
                   noarch="generic", text_prefix=(f"bin/{name}",))


def _tree_files(root: Path) -> Tuple[Dict[str, bytes], Dict[str, str], Tuple[str, ...]]:
    files, links, executables = {}, {}, []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith(".tykky") or "__pycache__" in relative:
            continue
        if path.is_symlink():
            links[relative] = os.readlink(path)
        elif path.is_file():
            files[relative] = path.read_bytes()
            if os.access(path, os.X_OK):
                executables.append(relative)
    return files, links, tuple(executables)


def python_package() -> Package:
    files, links, executables = _tree_files(CPYTHON_PREFIX)
    links["bin/python"] = "python3.11"
    marker = str(CPYTHON_PREFIX).encode()
    text = tuple(p for p, data in files.items() if marker in data and b"\0" not in data)
    binary = tuple(p for p, data in files.items() if marker in data and b"\0" in data)
    return Package("python", "3.11.2", files, executables=executables, symlinks=links,
                   text_prefix=text, binary_prefix=binary, placeholder=str(CPYTHON_PREFIX))


def wheel_package(wheel: Path, name: str, version: str, entry_points: Sequence[str],
                  depends: Sequence[str] = ("python",)) -> Package:
    """A noarch: python package from a wheel, as conda-forge builds them."""
    files = {}
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            if not member.endswith("/") and not member.endswith(".dist-info/RECORD"):
                files[f"site-packages/{member}"] = archive.read(member)
    return Package(name, version, files, noarch="python", depends=tuple(depends), entry_points=tuple(entry_points))


def python_packages() -> List[Package]:
    if not (CPYTHON_PREFIX / "bin" / "python3").is_file():
        raise RuntimeError(f"The test CPython is missing at {CPYTHON_PREFIX}: run scripts/build-test-python.sh "
                           "(as root, once; scripts/test.sh does it).")
    wheel = next((CPYTHON_PREFIX / "lib" / "python3.11" / "ensurepip" / "_bundled").glob("pip-*.whl"))
    pip_version = wheel.name.split("-")[1]
    pylib = {"site-packages/tykky_pylib/__init__.py":
             b"import os, sys\nWHERE = os.path.dirname(__file__)\nGREETING = 'tykky_pylib from conda'\n",
             "site-packages/tykky_pylib-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tykky-pylib\n"
                                                                 b"Version: 1.0\n",
             "site-packages/tykky_pylib-1.0.dist-info/INSTALLER": b"conda\n"}
    return [
        python_package(),
        wheel_package(wheel, "pip", pip_version, ("pip = pip._internal.cli.main:main",
                                                  "pip3 = pip._internal.cli.main:main")),
        Package("tykky-pylib", "1.0", pylib, noarch="python", depends=("python", "tykky-data")),
    ]


def build_channel(channel: Path, with_python: bool = True) -> Path:
    """Write every package and index the channel; returns its directory. Without python (and
    the noarch: python packages) it builds in a fraction of a second."""
    channel.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        packages = native_packages(Path(workdir)) + script_packages()
    packages += python_packages() if with_python else []
    packages += [stand_in("conda"), stand_in("mamba")]
    for package in packages:
        write_package(package, channel)
    (channel / "noarch").mkdir(exist_ok=True)
    index(channel)
    for root, dirs, names in os.walk(channel):
        for name in dirs + names:
            os.chmod(os.path.join(root, name), 0o755 if name in dirs else 0o644)
    os.chmod(channel, 0o755)
    return channel


def index(channel: Path) -> None:
    """rattler.index in its own process: py-rattler's threads can crash an interpreter's exit."""
    program = ("import asyncio, os, sys, rattler.index\n"
               "asyncio.run(rattler.index.index_fs(sys.argv[1]))\nsys.stdout.flush()\nos._exit(0)")
    subprocess.run([sys.executable, "-c", program, str(channel)], check=True)


def channel_url(channel: Path) -> str:
    return channel.absolute().as_uri()


def package_urls(channel: Path, names: Sequence[str]) -> List[str]:
    """URLs of the named packages, as `conda list --explicit` writes them."""
    urls = []
    for name in names:
        matches = sorted(channel.glob(f"*/{name}-[0-9]*.tar.bz2"))
        assert matches, f"no package {name} in {channel}"
        urls.append(matches[0].absolute().as_uri())
    return urls
