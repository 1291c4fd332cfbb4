"""Session-wide fixtures: the built zipapp, a workspace both users can reach, the users."""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import BASE_IMAGE, PYTHON36, REPO, ROOT, TEST_USER, make_owned_dir, user_named


def apptainer_available() -> bool:
    return shutil.which("apptainer") is not None and Path(BASE_IMAGE).is_file()


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    if apptainer_available() or os.environ.get("CI"):
        return  # in CI a missing runtime must fail loudly, never skip
    skip = pytest.mark.skip(reason="Apptainer or the base image is missing: run scripts/setup-host.sh")
    for item in items:
        if "apptainer" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def workspace() -> Path:
    """A directory under /tmp that the test user can traverse (CI clones may sit under /root)."""
    path = Path(tempfile.mkdtemp(prefix="tykky-tests-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    if not os.environ.get("TYKKY_KEEP_TEST_FILES"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pyz(workspace: Path) -> Path:
    """dist/tykky.pyz built once from this checkout, copied where every user can read it."""
    subprocess.run([sys.executable, str(REPO / "build_zipapp.py"), "-o", str(workspace / "dist" / "tykky.pyz")],
                   check=True, stdout=subprocess.DEVNULL)
    (workspace / "dist").chmod(0o755)
    return workspace / "dist" / "tykky.pyz"


@pytest.fixture(scope="session")
def python36() -> str:
    """Python 3.6, the oldest the tool runs on; in CI its absence fails the tests that need it."""
    if not os.access(PYTHON36, os.X_OK):
        message = f"no Python 3.6 at {PYTHON36}: scripts/setup-host.sh copies pyenv's there"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return PYTHON36


@pytest.fixture(scope="module")
def launcher(request):  # type: ignore[no-untyped-def]
    """shim/launcher.py loaded as the plain script it is, fresh for each test module."""
    name = "tykky_launcher_" + request.module.__name__.replace(".", "_")
    spec = importlib.util.spec_from_file_location(name, REPO / "shim" / "launcher.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def test_user():  # type: ignore[no-untyped-def]
    return user_named(TEST_USER)


@pytest.fixture(scope="session", params=["root", "user"])
def who(request, test_user):  # type: ignore[no-untyped-def]
    """Run a test once as root and once as the unprivileged test user."""
    return ROOT if request.param == "root" else test_user


@pytest.fixture(scope="session")
def user_dirs(workspace: Path, test_user):  # type: ignore[no-untyped-def]
    """A private directory per user inside the workspace."""
    return {"root": make_owned_dir(workspace / "root", ROOT),
            test_user.name: make_owned_dir(workspace / test_user.name, test_user)}
