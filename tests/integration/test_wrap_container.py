"""wrap-container end to end with real Apptainer and the base image, as root and as the test user."""
import json
import os
import signal
import subprocess
from functools import partial
from pathlib import Path

import pytest

from tests.helpers import BASE_IMAGE, exit_status, make_owned_dir, popen, spawn, tool
from tests.integration import conftest
from tests.integration.conftest import WAIT_FOR_SIGNAL, owned_file, signal_when_ready, warm_up
from tests.integration.image_fixtures import write_wheel

pytestmark = pytest.mark.apptainer

HOSTILE_ARGUMENTS = [
    "", " ", "two words", "  leading and trailing  ", "new\nline", "tab\there", "'single'", '"double"',
    "$HOME", "${PATH}", "`id`", "$(id)", "*", "?", "[a-z]*", "~", "back\\slash", "a;b", "a|b", ">out",
    "#comment", "--", "-c", "--prefix=x", "ünïcödé", "emoji 🚀", "%s %d", "!",
]
ECHO_ARGV = "import sys, json; sys.stdout.write(json.dumps(sys.argv[1:]))"


@pytest.fixture(scope="session")
def usr_bin(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    """All of the base image's /usr/bin, wrapped once per user; returns (prefix, build log)."""
    home = user_dirs[who.name]
    prefix = home / "wc-usr-bin"
    completed = who.run(tool(pyz, "wrap-container", "-w", "/usr/bin", "--prefix", str(prefix), BASE_IMAGE),
                        cwd=home, env={"CW_LOG_LEVEL": "3"})
    return prefix, completed.stderr.decode()


@pytest.fixture(scope="session")
def prefix(usr_bin):  # type: ignore[no-untyped-def]
    return usr_bin[0]


def make_wheel(directory: Path, who) -> Path:  # type: ignore[no-untyped-def]
    wheel = write_wheel(directory, "tykkydemo", "GREETING = 'hello from the wheel'\n")
    os.chown(wheel, who.uid, who.gid)
    return wheel


@pytest.fixture(scope="session")
def venv_on_top(who, prefix, user_dirs):  # type: ignore[no-untyped-def]
    """A venv made by the wrapped Python, with a local wheel installed by its pip."""
    home = user_dirs[who.name]
    venv = home / "wc-venv"
    who.run([prefix / "bin" / "python", "-m", "venv", venv], cwd=home)
    wheel = make_wheel(make_owned_dir(home / "wheels", who), who)
    who.run([venv / "bin" / "pip", "install", "--no-index", "--disable-pip-version-check", wheel], cwd=home)
    return venv


@pytest.fixture(scope="session")
def sandbox(workspace):  # type: ignore[no-untyped-def]
    """The base image unpacked into a sandbox directory (by root, readable by everyone)."""
    path = workspace / "sandbox"
    if not path.exists():
        listing = subprocess.run(["apptainer", "sif", "list", BASE_IMAGE], check=True,
                                 stdout=subprocess.PIPE).stdout.decode()
        partition = next(line.split("|")[0].strip() for line in listing.splitlines() if "FS (Squashfs" in line)
        rootfs = workspace / "sandbox-rootfs.sqfs"
        with open(rootfs, "wb") as handle:
            subprocess.run(["apptainer", "sif", "dump", partition, BASE_IMAGE], check=True, stdout=handle)
        subprocess.run(["unsquashfs", "-no-progress", "-d", str(path), str(rootfs)], check=True,
                       stdout=subprocess.DEVNULL)
        rootfs.unlink()
        path.chmod(0o755)
    return path


def runtime_calls(build_log: str) -> list:
    return [line for line in build_log.splitlines()
            if line.startswith("[ DEBUG ] running: ") and " exec " in line]


def test_all_of_usr_bin_costs_one_container_listing(usr_bin):
    prefix, build_log = usr_bin
    assert len(runtime_calls(build_log)) == 1
    names = set(os.listdir(prefix / "bin"))
    assert len(names) > 250
    assert {"ls", "sh", "python3", "python", "_debug_exec", "_debug_shell"} <= names
    assert os.readlink(prefix / "_bin" / "ls") == "/usr/bin/ls"
    assert not (prefix / "img.sqfs").exists()
    assert (prefix / "container.sif").stat().st_size == Path(BASE_IMAGE).stat().st_size


def test_manifest_runs_programs_by_their_own_path(prefix):
    manifest = json.loads((prefix / "_tykky" / "manifest.json").read_text())
    assert manifest["layers"] == [] and manifest["marker"] is None
    assert manifest["binds"]["isolate"] is True
    assert "ls" in manifest["direct_targets"] and "python3" not in manifest["direct_targets"]
    assert manifest["prefix_on_path"] is False
    assert (prefix / "share" / "tykky" / "history" / "0001-new" / "command.json").is_file()
    assert "isolate: true" in (prefix / "share" / "tykky" / "config.yaml").read_text()


def test_isolated_by_default_with_the_containers_own_path(prefix, who):
    script = 'test -e /usr/bin/gcc && echo host-usr || echo own-usr; echo "$PATH"; echo "$LD_LIBRARY_PATH"'
    completed = who.run([prefix / "bin" / "sh", "-c", script],
                        env={"PATH": "/host/only/bin:/usr/bin:/bin", "LD_LIBRARY_PATH": "/host/only/lib"})
    usr, path, library_path = completed.stdout.decode().splitlines()
    manifest = json.loads((prefix / "_tykky" / "manifest.json").read_text())
    assert usr == "own-usr"  # gcc is on the host only: the host's /usr is not bound
    assert path == manifest["path"]["container"]
    assert "/usr/bin" in path.split(":") and "/host/only/bin" not in path
    assert "/host/only/lib" not in library_path
    for value in (path, library_path):
        entries = value.split(":")
        assert len(entries) == len(set(entries)), value


def test_hostile_arguments_pass_byte_exact_to_python(prefix, who):
    completed = who.run([prefix / "bin" / "python3", "-c", ECHO_ARGV, *HOSTILE_ARGUMENTS])
    assert json.loads(completed.stdout) == HOSTILE_ARGUMENTS


def test_hostile_arguments_pass_byte_exact_to_a_program_run_by_its_path(prefix, who):
    completed = who.run([prefix / "bin" / "printf", "%s\\0", *HOSTILE_ARGUMENTS])
    assert completed.stdout == b"".join(a.encode() + b"\0" for a in HOSTILE_ARGUMENTS)


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_code_is_the_programs(prefix, who, code):
    completed = who.run([prefix / "bin" / "sh", "-c", f"exit {code}"], check=False)
    assert completed.returncode == code


def test_signal_reaches_the_program(prefix, who, pyz):
    warm_up(who, pyz, prefix, "python3")
    process = popen(who, [prefix / "bin" / "python3", "-c", WAIT_FOR_SIGNAL], stdout=subprocess.PIPE)
    output = signal_when_ready(process, signal.SIGTERM)
    assert output == f"got {int(signal.SIGTERM)}\n".encode()
    assert process.returncode == 40 + signal.SIGTERM


def test_users_own_symlink_to_a_wrapper(prefix, who, user_dirs):
    home = user_dirs[who.name]
    for name in ("python3", "sh"):
        link = home / f"my-wrapped-{name}"
        if not link.is_symlink():
            os.symlink(prefix / "bin" / name, link)
    # Run by the wrapper's path: next to the user's link Python would not find the installation.
    program = "import sys; print(sys.executable, sys.prefix)"
    python = who.run([home / "my-wrapped-python3", "-c", program])
    assert python.stdout == who.run([prefix / "bin" / "python3", "-c", program]).stdout
    assert python.stdout.decode().split()[0] == str(prefix / "bin" / "python3")
    shell = who.run([home / "my-wrapped-sh", "-c", "test -e /usr/bin/gcc || echo inside"])
    assert shell.stdout == b"inside\n"


def test_debug_exec_runs_a_command_inside(prefix, who):
    completed = who.run([prefix / "bin" / "_debug_exec", "sh", "-c", "test -e /usr/bin/gcc || cat /etc/debian_version"])
    assert completed.stdout.decode().startswith("12")



def test_debug_shell_is_interactive_inside(prefix, who):
    child = spawn(who, [prefix / "bin" / "_debug_shell", "--norc", "--noprofile"])
    child.sendline("test -t 0 && echo tty-$(test -e /usr/bin/gcc && echo host || echo container)")
    child.expect("tty-container")
    assert exit_status(child, "exit 4") == 4


def test_launcher_reached_inside_its_own_container_runs_the_program(prefix, who, user_dirs):
    """Without an image there is no marker file: the runtime's record of the container decides."""
    links = make_owned_dir(user_dirs[who.name] / "launcher-links", who)
    if not (links / "ls").is_symlink():
        os.symlink(prefix / "_tykky" / "launcher", links / "ls")
    inside = who.run([prefix / "bin" / "_debug_exec", links / "ls", "-d", "/etc"])
    assert inside.stdout == b"/etc\n"
    foreign = who.run(["apptainer", "-q", "exec", BASE_IMAGE, links / "ls", "-d", "/etc"], check=False)
    assert foreign.returncode != 0 and b"inside another container" in foreign.stderr


def test_venv_on_the_wrapped_python(prefix, venv_on_top, who):
    venv = venv_on_top
    assert os.readlink(venv / "bin" / "python") == str(prefix / "bin" / "python")
    program = ("import shutil, sys, tykkydemo; print(sys.executable); print(shutil.which('python')); "
               "print(tykkydemo.__file__)")
    executable, which, module = who.run([venv / "bin" / "python", "-c", program]).stdout.decode().split()
    assert executable == str(venv / "bin" / "python")
    assert which == str(venv / "bin" / "python")
    assert module.startswith(str(venv / "lib"))


def test_venv_on_the_wrapped_python_activated(venv_on_top, who):
    venv = venv_on_top
    script = f'. "{venv}/bin/activate" && python -c "import shutil, tykkydemo; print(shutil.which(\'python\'))"'
    completed = who.run(["bash", "-c", script])
    assert completed.stdout.decode().strip() == str(venv / "bin" / "python")


def test_wrapped_python_sees_the_containers_packages_and_is_not_the_hosts(prefix, who):
    program = "import sys, venv, ensurepip; print(sys.prefix, sys.base_prefix)"
    completed = who.run([prefix / "bin" / "python3", "-c", program])
    assert completed.stdout.decode().split() == [str(prefix), "/usr"]


def test_sandbox_directory_is_linked_not_copied(sandbox, who, pyz, user_dirs):
    home = user_dirs[who.name]
    prefix = home / "wc-sandbox"
    if not prefix.exists():
        who.run(tool(pyz, "wrap-container", "-w", "/usr/bin/python3", "--prefix", str(prefix), str(sandbox)), cwd=home)
    assert os.path.realpath(prefix / "container") == str(sandbox)
    assert sorted(os.listdir(prefix / "bin")) == ["_debug_exec", "_debug_shell", "python", "python3"]
    completed = who.run([prefix / "bin" / "python3", "-c", "import sys; print(sys.version_info[0])"])
    assert completed.stdout == b"3\n"
    moved = home / "wc-sandbox-moved"
    who.run(["mv", prefix, moved])
    try:
        completed = who.run([moved / "bin" / "python3", "-c", "import sys; print(sys.executable)"])
    finally:
        who.run(["mv", moved, prefix])
    assert completed.stdout.decode().strip() == str(moved / "bin" / "python3")


failed_build = partial(conftest.failed_build, "wrap-container")


def test_path_missing_in_the_container_is_an_error(who, pyz, user_dirs):
    stderr = failed_build(who, pyz, user_dirs[who.name], "wc-missing", "-w", "/usr/bin,/no/such/dir", BASE_IMAGE)
    assert "/no/such/dir" in stderr and "do not exist in the container" in stderr


def test_relative_path_is_an_error(who, pyz, user_dirs):
    stderr = failed_build(who, pyz, user_dirs[who.name], "wc-relative", "-w", "usr/bin", BASE_IMAGE)
    assert "usr/bin" in stderr and "absolute" in stderr


def test_failed_pull_names_the_reference_and_leaves_no_cache(who, pyz, user_dirs):
    reference = "docker://tykky-test.invalid/no-such-image:1"
    stderr = failed_build(who, pyz, user_dirs[who.name], "wc-pull", "-w", "/usr/bin", reference)
    assert f"Could not pull the container {reference}" in stderr


def test_missing_local_container_is_an_error(who, pyz, user_dirs):
    stderr = failed_build(who, pyz, user_dirs[who.name], "wc-nofile", "-w", "/usr/bin", "/no/such/image.sif")
    assert "/no/such/image.sif does not exist" in stderr


def test_configuration_file_can_share_the_host(who, pyz, user_dirs):
    """-y CONF.yaml: with isolate: no the host's PATH reaches the programs; the default is isolated."""
    home = user_dirs[who.name]
    prefix = home / "wc-shared"
    if not prefix.exists():
        conf = owned_file(home / "shared.yaml", "isolate: no\n", who)
        who.run(tool(pyz, "wrap-container", "-y", str(conf), "-w", "/usr/bin/sh", "--prefix", str(prefix),
                     BASE_IMAGE), cwd=home)
    completed = who.run([prefix / "bin" / "sh", "-c", 'echo "$PATH"'], env={"PATH": "/host/only/bin:/usr/bin:/bin"})
    assert json.loads((prefix / "_tykky" / "manifest.json").read_text())["binds"]["isolate"] is False
    assert completed.stdout.decode().strip().split(":") == ["/host/only/bin", "/usr/bin", "/bin"]


def test_warm_launch_from_a_directory_no_bind_covers_runs_there(prefix, who, pyz):
    """Isolated: the instance shows only its binds, while a cold launch has the runtime mount the
    working directory. A launch from elsewhere must run there (cold), not in the instance's /."""
    warm_up(who, pyz, prefix, "python3")
    outside = make_owned_dir(Path(f"/srv/tykky-cwd-{who.name}-{os.getpid()}"), who)
    try:
        (outside / "marker").write_text("here\n")
        completed = who.run([prefix / "bin" / "cat", "marker"], cwd=outside)
        assert completed.stdout.decode() == "here\n"
        assert who.run([prefix / "bin" / "pwd"], cwd=outside).stdout.decode().strip() == str(outside)
    finally:
        subprocess.run(["rm", "-rf", str(outside)], check=True)
