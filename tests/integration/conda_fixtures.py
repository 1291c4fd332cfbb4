"""Conda installations built once per session from the local test channel, as root and as the test user."""
import json
from pathlib import Path
from typing import List

import pytest

from tests.conda_channel import build_channel, channel_url
from tests.helpers import make_owned_dir, tool

PYPI_SECTION = "six==1.16.0"
REQUIREMENT = "iniconfig==2.0.0"
PRE_INSTALL = 'mkdir -p /TYKKY/extra && echo "pre-install ran, env_root=$env_root" > /TYKKY/extra/pre.txt\n'
POST_INSTALL = ('echo "post-install: CONDA_PREFIX=$CONDA_PREFIX TYKKY_ACTIVATED=$TYKKY_ACTIVATED '
                'python=$(command -v python)" > "$CONDA_PREFIX/post-install.txt"\n')
MAMBA_POST_INSTALL = ('conda install -y something > "$CONDA_PREFIX/conda-said.txt"\n'
                      'mamba --version > "$CONDA_PREFIX/mamba-said.txt"\n')


def environment_yml(channel: Path, dependencies: List[str], pip: List[str] = ()) -> str:
    lines = ["name: tested", "channels:", f"  - {channel_url(channel)}", "dependencies:"]
    lines += [f"  - {dependency}" for dependency in dependencies]
    if pip:
        lines += ["  - pip:"] + [f"    - {requirement}" for requirement in pip]
    lines += ["variables:", "  TYKKY_ENV_VARIABLE: from the env file"]
    return "\n".join(lines) + "\n"


def write_owned(path: Path, text: str, who) -> Path:  # type: ignore[no-untyped-def]
    import os

    path.write_text(text)
    os.chown(path, who.uid, who.gid)
    return path


def build(who, pyz, home: Path, name: str, env_text: str, *options: str, env_name: str = "environment.yml",
          check: bool = True, environ=None):  # type: ignore[no-untyped-def]
    """conda-containerize new into home/name from env_text; returns the completed process."""
    inputs = make_owned_dir(home / f"conda-inputs-{name}", who)
    env_file = write_owned(inputs / env_name, env_text, who)
    return who.run(tool(pyz, "conda-containerize", "new", "--prefix", str(home / name), *options, str(env_file)),
                   cwd=home, check=check, env=environ)


@pytest.fixture(scope="session")
def conda_channel(workspace: Path) -> Path:
    """The local channel (python included), built once per session."""
    return build_channel(workspace / "conda-channel")


@pytest.fixture(scope="session")
def conda_installation(who, pyz, user_dirs, conda_channel):  # type: ignore[no-untyped-def]
    """The full one: python, noarch packages, pip: section, -r, pre- and post-install."""
    home = user_dirs[who.name]
    prefix = home / "conda-inst"
    if not prefix.exists():
        inputs = make_owned_dir(home / "conda-inputs", who)
        requirements = write_owned(inputs / "requirements.txt", REQUIREMENT + "\n", who)
        pre = write_owned(inputs / "pre.sh", PRE_INSTALL, who)
        post = write_owned(inputs / "post.sh", POST_INSTALL, who)
        text = environment_yml(conda_channel, ["tykky-hello", "tykky-where", "tykky-activate", "tykky-data",
                                               "tykky-postlink", "tykky-pylib", "python=3.11", "pip"],
                               pip=[PYPI_SECTION])
        build(who, pyz, home, "conda-inst", text, "-r", str(requirements), "--pre-install", str(pre),
              "--post-install", str(post))
    return prefix


@pytest.fixture(scope="session")
def mamba_installation(who, pyz, user_dirs, conda_channel):  # type: ignore[no-untyped-def]
    """A small env with --mamba, whose post-install calls conda and mamba (stand-ins, see conda_channel)."""
    home = user_dirs[who.name]
    if not (home / "conda-mamba").exists():
        post = write_owned(make_owned_dir(home / "conda-inputs", who) / "mamba-post.sh", MAMBA_POST_INSTALL, who)
        build(who, pyz, home, "conda-mamba", environment_yml(conda_channel, ["tykky-hello"]), "--mamba",
              "--post-install", str(post))
    return home / "conda-mamba"


@pytest.fixture(scope="session")
def updatable_conda(who, pyz, user_dirs, conda_channel):  # type: ignore[no-untyped-def]
    home = user_dirs[who.name]
    if not (home / "conda-update").exists():
        build(who, pyz, home, "conda-update", environment_yml(conda_channel, ["tykky-hello"]))
    return home / "conda-update"


def installed_urls(who, prefix: Path) -> List[str]:
    """The package URLs of an installation's environment, as `conda list --explicit` gives them."""
    program = ("import glob, json\nfor f in sorted(glob.glob('/TYKKY/env1/conda-meta/*.json')):\n"
               "    print(json.load(open(f))['url'])")
    completed = who.run([prefix / "bin" / "_debug_exec", "/usr/bin/python3", "-c", program])
    return completed.stdout.decode().split()


def conda_rows(listing: str) -> List[str]:
    """list-packages lines of conda packages (pip's are pypi rows)."""
    return [line for line in listing.splitlines() if line and not line.startswith("#") and "pypi" not in line]


def manifest(prefix: Path) -> dict:
    return json.loads((prefix / "_tykky" / "manifest.json").read_text())
