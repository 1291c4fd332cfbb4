"""Where builds happen and what they see: the build directory base and the build's PATH."""
import pytest

from tests.helpers import make_owned_dir
from tests.integration.conftest import build_pip, failed_build, owned_file

pytestmark = pytest.mark.apptainer


def test_missing_build_directory_is_created_with_its_parents(who, pyz, user_dirs):
    home = user_dirs[who.name]
    base = home / "builds-missing" / "a" / "b"
    build_pip(who, pyz, home, "created-base-inst", "six==1.16.0\n", env={"CW_BUILD_TMPDIR": str(base)})
    assert base.is_dir() and list(base.iterdir()) == []
    assert (home / "created-base-inst" / "bin" / "python").exists()


@pytest.mark.parametrize("base, says", [("A/B/C", "A/B/C: the path is not absolute"),
                                        ("/proc/no-builds-here", "Could not create build directory "
                                                                 "/proc/no-builds-here")])
def test_unusable_build_directory_is_refused(who, pyz, user_dirs, base, says):
    home = user_dirs[who.name]
    inputs = make_owned_dir(home / "inputs-bad-base", who)
    requirements = owned_file(inputs / "requirements.txt", "six==1.16.0\n", who)
    stderr = failed_build("pip-containerize new", who, pyz, home, "bad-base-inst", str(requirements),
                          env={"CW_BUILD_TMPDIR": base})
    assert says in stderr


def test_build_leaves_another_installations_bin_out_of_path(who, pyz, user_dirs, pip_installation):
    """That installation's python3 first on PATH would run its wrapper inside the build container."""
    home = user_dirs[who.name]
    path = f"{pip_installation}/bin:/usr/local/bin:/usr/bin:/bin"
    completed = build_pip(who, pyz, home, "path-inst", "six==1.16.0\n", env={"PATH": path})
    assert f"Removed {pip_installation}/bin from the build's PATH" in completed.stderr.decode()
    out = who.run([home / "path-inst" / "bin" / "python", "-c", "import six, sys; print(sys.prefix)"]).stdout
    assert out.decode().strip() == str(home / "path-inst")
