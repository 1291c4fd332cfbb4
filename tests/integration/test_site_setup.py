"""The built tykky.pyz end to end, as root and as the test user: `setup` into a directory, a pip
installation through the setup's bin/ (with a broken PYTHONPATH and PYTHONHOME in the caller's
environment, the site configuration taken from the setup), its module file loaded with Lmod,
and `tykky activate` / `deactivate` from the setup's profile in interactive bash and sh."""
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

import pytest

from tests.helpers import make_owned_dir
from tests.integration.conftest import owned_file
from tests.shells import Shell
from tests.test_modulefile import LMOD_INIT

pytestmark = pytest.mark.apptainer
SITE = "debian-test"  # the shipped configuration whose base image this machine has


@dataclass(frozen=True)
class SiteSetup:
    directory: Path
    cache: Path
    env: Dict[str, str]

    def command(self, name: str) -> Path:
        return self.directory / "bin" / name


@dataclass(frozen=True)
class Built:
    prefix: Path
    modules: Path
    stderr: str


def broken_python_path(root: Path) -> Path:
    """Packages shadowing tykky's and pip's own, failing on import."""
    for name in ("argparse", "yaml", "tykky", "pip", "six"):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "__init__.py").write_text(f"raise ImportError('the broken {name} from PYTHONPATH')\n")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


@pytest.fixture(scope="session")
def site_setup(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    """`tykky.pyz setup` into a directory of `who` (with a space in its name), its own cache."""
    home = user_dirs[who.name]
    setup = SiteSetup(home / "tykky site", home / "pyz-cache",
                      {"CW_GLOBAL_YAML": "", "TYKKY_CACHE_DIR": str(home / "pyz-cache")})
    if not setup.directory.exists():
        who.run([pyz, "setup", "--config", SITE, "--dir", setup.directory], env=setup.env, cwd=home)
    return setup


@pytest.fixture(scope="session")
def site_installation(who, site_setup, user_dirs):  # type: ignore[no-untyped-def]
    """A pip installation made through the setup's bin/pip-containerize, built once per user."""
    home = user_dirs[who.name]
    built = Built(home / "site-inst", home / "modules", "")
    if built.prefix.exists():
        return built
    inputs = make_owned_dir(home / "site-inputs", who)
    requirements = owned_file(inputs / "requirements.txt", "six==1.16.0\n", who)
    broken = broken_python_path(inputs / "broken")
    env = {**site_setup.env, "PYTHONPATH": str(broken), "PYTHONHOME": "/nonexistent",
           "PYTHONUSERBASE": str(broken)}
    completed = who.run([site_setup.command("pip-containerize"), "new", "--prefix", built.prefix,
                         "--modulefile", built.modules, "--modulefile-tcl", requirements], env=env, cwd=home)
    return Built(built.prefix, built.modules, completed.stderr.decode())


def test_setup_links_the_commands_to_the_archive(site_setup, pyz):
    for name in ("tykky", "conda-containerize", "pip-containerize", "wrap-container", "wrap-install"):
        assert os.readlink(site_setup.command(name)) == str(pyz)
    assert (site_setup.directory / "etc" / "tykky.conf").read_text().endswith(f"site_config={SITE}\n")


def test_info_through_the_setup(site_setup, who):
    out = who.run([site_setup.command("tykky"), "info"], env=site_setup.env).stdout.decode()
    assert f"setup:            {site_setup.directory}\n" in out
    assert f"site config:      {SITE} (shipped with tykky)\n" in out
    assert f"site config from: the setup in {site_setup.directory}" in out
    assert "python:           /usr/bin/python3" in out
    assert "runtime:          apptainer 1.4.5 (/usr/bin/apptainer)" in out
    expected_mode = "unprivileged starter, running as root" if who.is_root else "unprivileged (user namespaces"
    assert f"runtime mode:     {expected_mode}" in out
    assert "squashfuse:       /" in out


def test_pip_install_through_the_setup_uses_its_site_config(site_installation, who):
    prefix = site_installation.prefix
    saved = (prefix / "share" / "tykky" / "config.yaml").read_text()
    assert "container_src: /opt/tykky-ci/images/base.sif" in saved  # debian-test, not the generic default
    completed = who.run([prefix / "bin" / "python", "-c", "import six, sys; print(sys.prefix, six.__version__)"])
    assert completed.stdout.decode().split() == [str(prefix), "1.16.0"]
    assert "Traceback" not in site_installation.stderr
    assert f"Module file: {site_installation.modules / 'site-inst.lua'}" in site_installation.stderr


def test_the_extraction_cache_is_the_users_own(site_setup, site_installation, who):
    extractions = [p for p in site_setup.cache.iterdir() if p.name.startswith("tykky-") and p.is_dir()]
    assert len(extractions) == 1
    assert extractions[0].stat().st_uid == who.uid


@pytest.mark.parametrize("module_file", ["site-inst.lua", "site-inst"])
def test_module_file_loads_with_lmod(site_installation, who, tmp_path_factory, module_file):
    if not LMOD_INIT.is_file():
        pytest.skip("Lmod is not installed (scripts/setup-host.sh installs it)")
    modules = make_owned_dir(site_installation.modules.parent / f"only-{module_file.replace('.', '-')}", who)
    (modules / module_file).write_bytes((site_installation.modules / module_file).read_bytes())
    script = (f'source {LMOD_INIT}; module use {shlex.quote(str(modules))}; module load site-inst || exit 9; '
              'python -c "import six, sys; print(sys.prefix)"; module help site-inst')
    completed = who.run(["bash", "--noprofile", "--norc", "-c", script])
    assert completed.stdout.decode().splitlines()[0] == str(site_installation.prefix)
    assert "python" in completed.stderr.decode() and "Programs (" in completed.stderr.decode()


def test_completion_comes_from_the_program(site_setup, site_installation, who, user_dirs):
    env = {**site_setup.env, "_TYKKY_COMPLETE": "bash_complete", "COMP_WORDS": "tykky acti", "COMP_CWORD": "1"}
    assert who.run([site_setup.command("tykky")], env=env).stdout.decode().split() == ["plain,activate"]
    env.update(COMP_WORDS="tykky activate site-", COMP_CWORD="2", TYKKY_PATH=str(user_dirs[who.name]))
    assert who.run([site_setup.command("tykky")], env=env).stdout.decode().split() == ["plain,site-inst"]


@pytest.mark.parametrize("shell_name", ["bash", "sh"])
def test_activate_and_deactivate_from_the_setup_profile(site_setup, site_installation, who, user_dirs,
                                                         shell_name):
    home = user_dirs[who.name]
    env = who.environment({**site_setup.env, "TYKKY_PATH": str(home), "TERM": "dumb"})
    shell = Shell(shell_name, {"PATH": "/usr/bin:/bin"}, home, wrap=lambda argv: who.command(argv, env))
    start_path = shell.value("$PATH")
    shell.run(f". {shlex.quote(str(site_setup.directory / 'etc' / 'profile.d' / 'tykky.sh'))}")
    with_setup = shell.value("$PATH")
    assert with_setup == f"{site_setup.directory}/bin:{start_path}"
    output, status = shell.status("tykky activate site-inst")
    assert status == 0, output
    assert shell.value("$PATH") == f"{site_installation.prefix}/bin:{with_setup}"
    assert shell.value("$PS1").startswith("(site-inst) ")
    assert str(site_installation.prefix) in shell.run('python -c "import six, sys; print(sys.prefix)"')
    assert f"setup:            {site_setup.directory}" in shell.run("tykky info")
    output, status = shell.status("tykky deactivate")
    assert status == 0, output
    assert shell.value("$PATH") == with_setup
    assert shell.value("${TYKKY_PREFIX-unset}") == "unset"
    shell.close()
