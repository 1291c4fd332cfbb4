"""Installations built once per session, as root and as the test user."""
from pathlib import Path

import pytest

from tests.helpers import REPO, make_owned_dir, tool


@pytest.fixture(scope="session")
def pip_installation(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    """A pip installation of tests/data/requirements.txt owned by `who`, built once."""
    home = user_dirs[who.name]
    prefix = home / "pip-inst"
    if not prefix.exists():
        requirements = make_owned_dir(home / "inputs", who) / "requirements.txt"
        requirements.write_text((REPO / "tests" / "data" / "requirements.txt").read_text())
        requirements.chmod(0o644)
        who.run(tool(pyz, "pip-containerize", "new", "--prefix", str(prefix), str(requirements)), cwd=home)
    return prefix


def owned_file(path: Path, text: str, who) -> Path:  # type: ignore[no-untyped-def]
    path.write_text(text)
    import os

    os.chown(path, who.uid, who.gid)
    return path


# The conda installations, shared by the conda test modules (built once per session and user).
from tests.integration.conda_fixtures import (  # noqa: E402,F401
    conda_channel,
    conda_installation,
    mamba_installation,
    updatable_conda,
)
