"""conda-containerize update, --mamba, explicit lists and every error case, as root and as the test user."""
import subprocess

import pytest

from tests.conda_channel import channel_url
from tests.helpers import make_owned_dir, popen, tool
from tests.integration.conda_fixtures import (
    REQUIREMENT,
    build,
    conda_rows,
    environment_yml,
    installed_urls,
    manifest,
    write_owned,
)

pytestmark = pytest.mark.apptainer
ENV = "/TYKKY/env1"


def test_mamba_gives_post_install_a_conda_and_a_mamba(mamba_installation, who):
    # The channel has stand-ins for conda and mamba (no local channel carries the real ones):
    # this checks that --mamba installs them from the channels and puts them on PATH.
    program = 'cat "$CONDA_PREFIX/conda-said.txt" "$CONDA_PREFIX/mamba-said.txt"; echo "CONDA_EXE=$CONDA_EXE"'
    output = who.run([mamba_installation / "bin" / "_debug_exec", "/bin/sh", "-c", program]).stdout.decode()
    assert output.splitlines() == [
        f"conda stand-in at /TYKKY/base, CONDA_PREFIX={ENV}, args: install -y something",
        f"mamba stand-in at /TYKKY/base, CONDA_PREFIX={ENV}, args: --version",
        "CONDA_EXE=/TYKKY/base/bin/conda"]
    assert "conda" not in manifest(mamba_installation)["targets"]


def test_explicit_list_round_trips(conda_installation, who, pyz, user_dirs):
    """`conda list --explicit` of one installation rebuilds the same conda packages (here with --uv and -r)."""
    home = user_dirs[who.name]
    urls = installed_urls(who, conda_installation)
    assert len(urls) == 9
    explicit = "# platform: linux-64\n@EXPLICIT\n" + "\n".join(urls) + "\n"
    requirements = write_owned(make_owned_dir(home / "conda-inputs-explicit", who) / "req.txt",
                               REQUIREMENT + "\n", who)
    build(who, pyz, home, "conda-explicit", explicit, "--uv", "-r", str(requirements), env_name="spec-file.txt")
    copy = home / "conda-explicit"
    original = who.run([conda_installation / "bin" / "list-packages"]).stdout.decode()
    rebuilt = who.run([copy / "bin" / "list-packages"]).stdout.decode()
    assert conda_rows(rebuilt) == conda_rows(original)
    installer = who.run([copy / "bin" / "python", "-c",
                         "import importlib.metadata as m; print(m.distribution('iniconfig').read_text('INSTALLER'))"])
    assert installer.stdout.decode().strip() == "uv"


def test_update_adds_packages_while_a_program_keeps_running(updatable_conda, who, pyz, user_dirs, conda_channel):
    home = user_dirs[who.name]
    waiting = f'echo ready; read line; cat {ENV}/bin/list-packages'
    running = popen(who, [updatable_conda / "bin" / "_debug_exec", "/bin/sh", "-c", waiting],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert running.stdout.readline() == b"ready\n"
    inputs = make_owned_dir(home / "conda-inputs-more", who)
    more = write_owned(inputs / "more.yml", environment_yml(conda_channel, ["tykky-extra", "tykky-activate"]), who)
    post = write_owned(inputs / "post2.sh", 'echo "second post-install" > "$CONDA_PREFIX/second.txt"\n', who)
    who.run(tool(pyz, "conda-containerize", "update", str(updatable_conda), "-e", str(more),
                 "--post-install", str(post)), cwd=home)
    output, _ = running.communicate(b"\n", timeout=60)
    assert running.returncode == 0 and b"tykky-hello" in output and b"tykky-extra" not in output
    # The update ran over the image with a writable layer on top: the image is kept, a layer of
    # the new packages is added.
    layers = manifest(updatable_conda)["layers"]
    assert [layer["image"] for layer in layers][:1] == ["img.sqfs"] and len(layers) == 2
    assert (updatable_conda / layers[1]["image"]).stat().st_size < (updatable_conda / "img.sqfs").stat().st_size
    assert who.run([updatable_conda / "bin" / "tykky-extra"]).stdout == b"extra package here\n"
    assert who.run([updatable_conda / "bin" / "tykky-hello"]).stdout.startswith(b"hello from libtykkyhello")
    check = 'cat "$CONDA_PREFIX/second.txt"; echo "$TYKKY_ACTIVATED"'
    assert who.run([updatable_conda / "bin" / "_debug_exec", "/bin/sh", "-c", check]).stdout.decode().splitlines() \
        == ["second post-install", f"activated in {ENV}"]
    history = updatable_conda / "share" / "tykky" / "history"
    assert sorted(p.name for p in history.iterdir()) == ["0001-new", "0002-update"]
    assert "tykky-extra" in (history / "0002-update" / "conda-more.yml").read_text()


def test_failing_post_install_shows_its_output_and_keeps_the_installation(updatable_conda, who, pyz, user_dirs):
    home = user_dirs[who.name]
    image = updatable_conda / "img.sqfs"
    before = image.stat().st_mtime_ns
    post = write_owned(make_owned_dir(home / "conda-inputs-bad", who) / "bad.sh",
                       "echo this-post-install-is-failing\nfalse\n", who)
    completed = who.run(tool(pyz, "conda-containerize", "update", str(updatable_conda), "--post-install", str(post)),
                        cwd=home, check=False)
    stderr = completed.stderr.decode()
    assert completed.returncode != 0
    assert "this-post-install-is-failing" in stderr and "Traceback" not in stderr
    assert image.stat().st_mtime_ns == before
    assert who.run([updatable_conda / "bin" / "tykky-hello"]).stdout.startswith(b"hello from libtykkyhello")


def test_advanced_yaml_with_activate_scripts_at_launch(who, pyz, user_dirs, conda_channel):
    """advanced CONF.yaml: another env_name, activate.d scripts that run at every launch, and a
    fresh rattler_path, so that installing py-rattler from the package index is tested every run."""
    home = user_dirs[who.name]
    inputs = make_owned_dir(home / "conda-inputs-advanced", who)
    env_file = write_owned(inputs / "env.yml", environment_yml(conda_channel, ["tykky-activate", "tykky-hello"]), who)
    solver = home / "conda-solver"
    conf = write_owned(inputs / "conf.yaml", (
        f"mode: conda\nenv_file: {env_file}\ninstallation_prefix: {home / 'conda-advanced'}\n"
        f"env_name: analysis\nactivate_scripts_at_launch: yes\nrattler_path: {solver}\n"
        "post_install:\n  - echo advanced-post > $CONDA_PREFIX/advanced.txt\n"), who)
    completed = who.run(tool(pyz, "conda-containerize", "advanced", str(conf)), cwd=home)
    assert f"Installing the conda solver py-rattler 0.28.0 into {solver}" in completed.stderr.decode()
    assert (solver / "rattler" / "__init__.py").is_file()
    prefix = home / "conda-advanced"
    activation = manifest(prefix)["activation"]
    assert activation["scripts"] == "/TYKKY/analysis/etc/conda/activate.d"
    assert "TYKKY_ACTIVATED" not in activation["environment"]
    program = 'echo "$CONDA_DEFAULT_ENV|$TYKKY_ACTIVATED|$TYKKY_ACTIVATED_FOR"; cat "$CONDA_PREFIX/advanced.txt"'
    output = who.run([prefix / "bin" / "_debug_exec", "/bin/sh", "-c", program],
                     env={"TYKKY_LAUNCH_VALUE": "set at launch"}).stdout.decode()
    assert output.splitlines() == ["analysis|activated in /TYKKY/analysis|set at launch", "advanced-post"]
    assert who.run([prefix / "bin" / "tykky-hello"]).stdout.startswith(b"hello from libtykkyhello")


def failed_build(who, pyz, user_dirs, name, text, env_name="environment.yml"):  # type: ignore[no-untyped-def]
    """A build that must fail cleanly: returns stderr after checking nothing was left behind."""
    home = user_dirs[who.name]
    builds = make_owned_dir(home / f"builds-{name}", who)
    completed = build(who, pyz, home, name, text, check=False, env_name=env_name,
                      environ={"CW_BUILD_TMPDIR": str(builds)})
    stderr = completed.stderr.decode()
    assert completed.returncode != 0, stderr
    assert "Traceback" not in stderr
    assert not (home / name).exists()
    assert list(builds.iterdir()) == []
    return stderr


def test_package_that_does_not_exist(who, pyz, user_dirs, conda_channel):
    stderr = failed_build(who, pyz, user_dirs, "conda-typo",
                          environment_yml(conda_channel, ["tykky-hello", "tykky-helo-typo"]))
    assert "tykky-helo-typo" in stderr
    assert channel_url(conda_channel) in stderr


def test_channel_that_cannot_be_reached(who, pyz, user_dirs):
    missing = "file:///nonexistent/tykky-channel"
    text = f"channels:\n  - {missing}\ndependencies:\n  - tykky-hello\n"
    stderr = failed_build(who, pyz, user_dirs, "conda-nochannel", text)
    assert "channel cannot be read" in stderr and missing in stderr


def test_malformed_env_file_says_where(who, pyz, user_dirs, conda_channel):
    text = f"channels:\n  - {channel_url(conda_channel)}\ndependencies:\n  - tykky-hello\n  - x: y: z\n  - other\n"
    stderr = failed_build(who, pyz, user_dirs, "conda-malformed", text)
    assert "environment.yml, line 5" in stderr and "not valid YAML" in stderr


def test_missing_env_file(who, pyz, user_dirs):
    home = user_dirs[who.name]
    completed = who.run(tool(pyz, "conda-containerize", "new", "--prefix", str(home / "conda-none"),
                             str(home / "no-such-env.yml")), cwd=home, check=False)
    assert completed.returncode != 0
    assert b"no-such-env.yml does not exist" in completed.stderr and b"Traceback" not in completed.stderr
    assert not (home / "conda-none").exists()


def test_upgrading_a_package_over_layers_or_by_rebuilding(who, pyz, user_dirs, conda_channel):
    """An upgrade removes the old version's files, which lie in a lower layer.

    Where the overlay can remove them the update is a new layer holding the whiteouts; where it
    cannot (the check is logged), the solver refuses to change installed packages over layers
    and the image is rebuilt. Either way the old version is gone.
    """
    home = user_dirs[who.name]
    build(who, pyz, home, "conda-upgrade", environment_yml(conda_channel, ["tykky-versioned ==1.0"]))
    prefix = home / "conda-upgrade"
    newer = write_owned(make_owned_dir(home / "conda-inputs-upgrade", who) / "newer.yml",
                        environment_yml(conda_channel, ["tykky-versioned >=2"]), who)
    completed = who.run(tool(pyz, "conda-containerize", "update", str(prefix), "-e", str(newer)), cwd=home,
                        env={"CW_LOG_LEVEL": "2"})
    log = completed.stdout.decode() + completed.stderr.decode()
    assert who.run([prefix / "bin" / "tykky-versioned"]).stdout == b"version 2.0\n"
    check = f"test ! -e {ENV}/share/tykky-versioned/v1 && cat {ENV}/share/tykky-versioned/v2/data.txt"
    assert who.run([prefix / "bin" / "_debug_exec", "/bin/sh", "-c", check]).stdout == b"data of 2.0\n"
    layers = manifest(prefix)["layers"]
    if "cannot be removed through the overlay" in log:
        assert "changes or removes installed packages (tykky-versioned)" in log and len(layers) == 1
    else:
        assert len(layers) == 2


def test_update_of_a_mamba_installation_keeps_its_base(mamba_installation, who, pyz, user_dirs, conda_channel):
    home = user_dirs[who.name]
    more = write_owned(make_owned_dir(home / "conda-inputs-mamba-more", who) / "more.yml",
                       environment_yml(conda_channel, ["tykky-extra"]), who)
    post = write_owned(home / "conda-inputs-mamba-more" / "post.sh",
                       '"$CONDA_EXE" install -y again > "$CONDA_PREFIX/conda-said.txt"\n', who)
    who.run(tool(pyz, "conda-containerize", "update", str(mamba_installation), "-e", str(more),
                 "--post-install", str(post)), cwd=home)
    assert who.run([mamba_installation / "bin" / "tykky-extra"]).stdout == b"extra package here\n"
    assert who.run([mamba_installation / "bin" / "tykky-hello"]).stdout.startswith(b"hello from libtykkyhello")
    said = who.run([mamba_installation / "bin" / "_debug_exec", "/bin/sh", "-c", 'cat "$CONDA_PREFIX/conda-said.txt"'])
    assert said.stdout.decode().strip() == f"conda stand-in at /TYKKY/base, CONDA_PREFIX={ENV}, args: install -y again"
