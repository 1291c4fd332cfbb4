"""pip-containerize options: --uv, --nocache, --system-site-packages, -w, and isolated builds
that must carry the host's pip configuration and CA certificates into the container."""
import pytest

from tests.helpers import make_owned_dir, tool
from tests.integration.conftest import build_pip, owned_file, site_config

pytestmark = pytest.mark.apptainer


def cache_entries(home) -> int:  # type: ignore[no-untyped-def]
    cache = home / ".cache" / "uv"
    return sum(1 for _ in cache.rglob("*")) if cache.is_dir() else 0


@pytest.fixture(scope="session")
def uv_installation(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    home = user_dirs[who.name]
    inputs = make_owned_dir(home / "inputs-uv", who)
    requirements = owned_file(inputs / "requirements.txt", "six==1.16.0\n", who)
    cache_before = cache_entries(make_owned_dir(home / "uv-home", who))
    who.run(tool(pyz, "pip-containerize", "new", "--prefix", str(home / "uv-inst"), "--uv", "--nocache",
                 "--system-site-packages", "-w", "/usr/bin/tar", str(requirements)),
            cwd=home, env={"HOME": str(home / "uv-home")})
    return home / "uv-inst", cache_before, cache_entries(home / "uv-home")


def test_uv_installs_and_nocache_leaves_no_cache(uv_installation, who):
    prefix, cache_before, cache_after = uv_installation
    completed = who.run([prefix / "bin" / "python", "-c", "import six; print(six.__version__)"])
    assert completed.stdout == b"1.16.0\n"
    assert cache_after == cache_before
    listing = who.run([prefix / "bin" / "_debug_exec", "ls", "/TYKKY/venv/bin"]).stdout.decode().split()
    assert "uv" not in listing  # uv is a build tool, not part of the installation


def test_system_site_packages_are_visible(uv_installation, who):
    prefix = uv_installation[0]
    completed = who.run([prefix / "bin" / "python", "-c", "import sys; print(sys.path)"])
    assert "dist-packages" in completed.stdout.decode()
    assert "include-system-site-packages = true" in (prefix / "pyvenv.cfg").read_text()


def test_extra_wrapped_program(uv_installation, who):
    prefix = uv_installation[0]
    assert (prefix / "bin" / "tar").is_symlink()
    assert b"GNU tar" in who.run([prefix / "bin" / "tar", "--version"]).stdout


def test_isolated_build_uses_host_pip_settings_and_ca(who, pyz, user_dirs):
    """The image's own CA bundle lacks the host's; pip inside only works with the host's bound in."""
    home = user_dirs[who.name]
    site = site_config(who, home, "isolated.yaml", isolate=True, mount_points=[str(home)])
    build_pip(who, pyz, home, "isolated-inst", "six==1.16.0\n", env={"CW_GLOBAL_YAML": str(site)})
    prefix = home / "isolated-inst"
    completed = who.run([prefix / "bin" / "python", "-c", "import six, sys; print(sys.version_info[0])"])
    assert completed.stdout == b"3\n"


def test_uv_is_on_path_for_pre_and_post_install_at_new_and_update(who, pyz, user_dirs):
    """The update also wraps one more program (-w), keeping the wrappers it had."""
    home = user_dirs[who.name]
    inputs = make_owned_dir(home / "inputs-uv-scripts", who)
    pre = owned_file(inputs / "pre.sh", "uv --version\n", who)
    post = owned_file(inputs / "post.sh", "uv pip install tomli==2.0.1\n", who)
    build_pip(who, pyz, home, "uv-scripts-inst", "six==1.16.0\n", "--uv", "--pre-install", str(pre),
              "--post-install", str(post))
    prefix = home / "uv-scripts-inst"
    later = owned_file(inputs / "later.sh", "uv pip install iniconfig==2.0.0\n", who)
    who.run(tool(pyz, "pip-containerize", "update", str(prefix), "--post", str(later), "-w", "/usr/bin/tar"),
            cwd=home)
    completed = who.run([prefix / "bin" / "python", "-c", "import tomli, iniconfig, sys; print(sys.prefix)"])
    assert completed.stdout.decode().strip() == str(prefix)
    assert b"GNU tar" in who.run([prefix / "bin" / "tar", "--version"]).stdout
