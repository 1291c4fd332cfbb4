"""Warm mounts: launches join one running instance per user, node and image."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import popen, tool
from tests.integration.conftest import (
    build_pip,
    instances_of,
    owned_file,
    signal_when_ready,
    site_config,
    wait_for,
    warm_up,
)

pytestmark = pytest.mark.apptainer
COLD = {"TYKKY_WARM_MOUNTS": "0"}
SHOW_ENVIRONMENT = "import os, json; print(json.dumps(dict(os.environ)))"
# Differ between any two launches, warm or cold.
VOLATILE = {"_", "SHLVL", "PWD", "OLDPWD"}


def mount_namespace(who, python: Path, env=None) -> str:  # type: ignore[no-untyped-def]
    return who.run([python, "-c", "import os; print(os.readlink('/proc/self/ns/mnt'))"], env=env).stdout.decode()


def test_launches_share_one_mount(pip_installation, who, pyz):
    warm_up(who, pyz, pip_installation)
    python = pip_installation / "bin" / "python"
    assert mount_namespace(who, python) == mount_namespace(who, python)


def test_cold_launches_mount_anew(pip_installation, who):
    python = pip_installation / "bin" / "python"
    program = "import os, sys; print(os.readlink('/proc/self/ns/mnt'), flush=True); sys.stdin.read()"
    first = popen(who, [python, "-c", program], env=COLD, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        # Namespace numbers are reused once freed: compare while the first one is alive.
        first_namespace = first.stdout.readline().decode()
        assert mount_namespace(who, python, COLD) != first_namespace
    finally:
        first.communicate(b"", timeout=60)


def test_warm_environment_equals_cold(pip_installation, who, pyz):
    warm_up(who, pyz, pip_installation)
    python = pip_installation / "bin" / "python"
    extra = {"TYKKY_PROBE_VARIABLE": "x y", "LANG": "C.UTF-8"}
    warm = json.loads(who.run([python, "-c", SHOW_ENVIRONMENT], env=extra).stdout)
    cold = json.loads(who.run([python, "-c", SHOW_ENVIRONMENT], env={**extra, **COLD}).stdout)
    cold.pop("TYKKY_WARM_MOUNTS")
    for key in VOLATILE:
        warm.pop(key, None)
        cold.pop(key, None)
    assert warm == cold


@pytest.mark.parametrize("mode", ["warm", "cold"])
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT])
def test_signals_and_exit_codes_on_both_paths(pip_installation, who, pyz, mode, number):
    if mode == "warm":
        warm_up(who, pyz, pip_installation)
    program = ("import os, signal, sys, time\n"
               f"signal.signal({int(number)}, lambda n, f: (os.write(1, b'caught'), os._exit(33)))\n"
               "os.write(1, b'ready\\n')\n"
               # Short sleeps: a handler that runs just before a long sleep starts would wait for its end.
               "for _ in range(2400): time.sleep(0.05)")
    process = popen(who, [pip_installation / "bin" / "python", "-c", program], env=COLD if mode == "cold" else None,
                    stdout=subprocess.PIPE)
    assert signal_when_ready(process, number) == b"caught"
    assert process.returncode == 33


def test_concurrent_first_launches_start_one_instance(pyz, who, user_dirs):
    home = user_dirs[who.name]
    prefix = home / "warm-race"
    build_pip(who, pyz, home, "warm-race", "six==1.16.0\n")
    program = "import os, six; print(os.readlink('/proc/self/ns/mnt'))"
    first_wave = [popen(who, [prefix / "bin" / "python", "-c", program], stdout=subprocess.PIPE) for _ in range(8)]
    for process in first_wave:
        process.communicate(timeout=120)
    assert all(process.returncode == 0 for process in first_wave)
    assert wait_for(lambda: instances_of(who, pyz, prefix) == 1)
    second_wave = [popen(who, [prefix / "bin" / "python", "-c", program], stdout=subprocess.PIPE) for _ in range(8)]
    namespaces = {process.communicate(timeout=120)[0] for process in second_wave}
    assert all(process.returncode == 0 for process in second_wave)
    assert len(namespaces) == 1
    assert instances_of(who, pyz, prefix) == 1


@pytest.fixture(scope="session")
def short_idle(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    """An installation whose instances stop after 3 idle seconds."""
    home = user_dirs[who.name]
    site = site_config(who, home, "short-idle.yaml", warm_idle_timeout=3)
    build_pip(who, pyz, home, "short-idle", "six==1.16.0\n", env={"CW_GLOBAL_YAML": str(site)})
    return home / "short-idle"


def test_idle_instance_stops_itself(short_idle, who, pyz):
    warm_up(who, pyz, short_idle)
    assert wait_for(lambda: instances_of(who, pyz, short_idle) == 0)


def test_instance_in_use_is_not_stopped(short_idle, who, pyz):
    warm_up(who, pyz, short_idle)
    program = ("import sys, time; sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.readline(); "
               "import six, os; print(len(os.listdir('/TYKKY/venv/lib')))")
    running = popen(who, [short_idle / "bin" / "python", "-c", program], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert running.stdout.readline() == b"ready\n"
    time.sleep(8)  # well past the 3 s idle timeout: the reaper must see the program
    assert instances_of(who, pyz, short_idle) == 1
    output, errors = running.communicate(b"\n", timeout=60)
    assert running.returncode == 0, errors
    assert output.strip().isdigit()


def test_stop_refuses_while_in_use_unless_forced(short_idle, who, pyz):
    warm_up(who, pyz, short_idle)
    running = popen(who, [short_idle / "bin" / "python", "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert running.stdout.readline() == b"up\n"
    refused = who.run(tool(pyz, "warm", "stop", str(short_idle)), check=False)
    assert refused.returncode != 0 and b"still run" in refused.stderr
    running.communicate(b"", timeout=60)
    who.run(tool(pyz, "warm", "stop", str(short_idle)))
    assert instances_of(who, pyz, short_idle) == 0


def test_updated_installation_gets_a_new_instance(short_idle, who, pyz, user_dirs):
    warm_up(who, pyz, short_idle)
    program = "import os, sys; print(os.readlink('/proc/self/ns/mnt'), flush=True); sys.stdin.read()"
    # A program of the old build keeps its instance (and namespace number) alive meanwhile.
    old = popen(who, [short_idle / "bin" / "python", "-c", program], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        before = old.stdout.readline().decode()
        more = owned_file(user_dirs[who.name] / "idle-more.txt", "tomli==2.0.1\n", who)
        who.run(tool(pyz, "pip-containerize", "update", str(short_idle), "-r", str(more)), cwd=user_dirs[who.name])
        who.run([short_idle / "bin" / "python", "-c", "import tomli"])
        assert wait_for(lambda: instances_of(who, pyz, short_idle) == 2)
        after = mount_namespace(who, short_idle / "bin" / "python")
        assert after != before
    finally:
        old.communicate(b"", timeout=60)
    assert wait_for(lambda: instances_of(who, pyz, short_idle) <= 1)


def test_warm_mounts_off_launches_cold(pip_installation, who, pyz):
    stopped = who.run(tool(pyz, "warm", "stop", str(pip_installation), "--force"))
    assert stopped.returncode == 0
    who.run([pip_installation / "bin" / "python", "-c", "pass"], env=COLD)
    assert instances_of(who, pyz, pip_installation) == 0


# As root, Apptainer mounts images with the kernel: in a user namespace (as instances of every
# other user run) it serves them with squashfuse, whose death is what this runtime lets root see.
RUNTIME_IN_A_USER_NAMESPACE = """#!/bin/sh
if [ "$2 $3" = "instance start" ]; then
    quiet=$1
    shift 3
    exec /usr/bin/apptainer "$quiet" instance start --userns "$@"
fi
exec /usr/bin/apptainer "$@"
"""


@pytest.fixture(scope="session")
def fuse_served(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    """An installation whose warm instances serve their images with squashfuse, root's too."""
    home = user_dirs[who.name]
    env = None
    if who.is_root:
        runtime = owned_file(home / "apptainer-in-a-user-namespace", RUNTIME_IN_A_USER_NAMESPACE, who)
        runtime.chmod(0o755)
        env = {"CW_GLOBAL_YAML": str(site_config(who, home, "fuse.yaml", singularity_executable_path=str(runtime)))}
    build_pip(who, pyz, home, "fuse-served", "tabulate==0.9.0\n", env=env)
    return home / "fuse-served"


def instance_state(who, prefix: Path) -> dict:  # type: ignore[no-untyped-def]
    """The state of the instance of prefix that runs."""
    for path in Path(f"/tmp/tykky-warm-{who.uid}").glob("*.json"):
        state = json.loads(path.read_text())
        if state["prefix"] == str(prefix) and Path(f"/proc/{state['pid']}").exists():
            return state
    raise AssertionError(f"no instance of {prefix} runs")


def squashfuse_of(state: dict, mount: str) -> int:
    """The squashfuse process of the instance that serves the mount (rootfs: the container)."""
    parent = Path(f"/proc/{state['pid']}/stat").read_text().rsplit(")", 1)[1].split()[1]
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if fields[1] == parent and b"squashfuse" in command[0] and command[-2].decode().endswith(mount):
            return int(entry.name)
    raise AssertionError(f"no squashfuse serves {mount} for instance {state['name']}")


@pytest.mark.parametrize("mount, recorded", [("/rootfs", True), ("/overlay-images/0", True),
                                             ("/overlay-images/0", False)])
def test_an_instance_whose_mount_died_is_replaced_and_launches_go_on(fuse_served, who, pyz, mount, recorded):
    """recorded: the state names the squashfuse processes; without, the launch finds that the
    instance's root cannot be read."""
    kill_a_mount_and_launch(who, pyz, fuse_served, mount, recorded)


def test_a_launcher_entering_with_setns_replaces_a_broken_instance_too(fuse_served, who, pyz, user_dirs):
    """Launchers on Python >= 3.12 enter instances with os.setns themselves (as root: the
    interpreter is root's): nothing may be entered before the instance is known to be usable."""
    from tests.integration.test_launcher_setns import PYTHON312
    from tykky import layout

    if not PYTHON312 or not who.is_root:
        pytest.skip("needs root's Python >= 3.12")
    copy = user_dirs["root"] / "fuse-served-setns"
    if not copy.exists():
        who.run(["cp", "-a", fuse_served, copy])
        layout.install_launcher(copy, PYTHON312[-1])
    kill_a_mount_and_launch(who, pyz, copy, "/overlay-images/0", recorded=False)


def kill_a_mount_and_launch(who, pyz, prefix: Path, mount: str, recorded: bool) -> None:  # type: ignore[no-untyped-def]
    warm_up(who, pyz, prefix)
    broken = instance_state(who, prefix)
    daemon = squashfuse_of(broken, mount)
    if not recorded:
        path = Path(f"/tmp/tykky-warm-{who.uid}/{broken['name']}.json")
        path.write_text(json.dumps({key: value for key, value in broken.items() if key != "fuse_daemons"}))
    os.kill(daemon, signal.SIGKILL)  # it serves the instance this test started
    assert wait_for(lambda: not Path(f"/proc/{daemon}").exists())
    program = "import os, sys, tabulate; print(sys.prefix)"
    for _ in range(3):
        assert who.run([prefix / "bin" / "python", "-c", program]).stdout.decode().strip() == str(prefix)
    # Stopped and forgotten: the next launch starts a new instance, and later launches join it.
    assert wait_for(lambda: not Path(f"/proc/{broken['pid']}").exists())
    warm_up(who, pyz, prefix)
    replacement = instance_state(who, prefix)
    assert replacement["pid"] != broken["pid"]
    joined = who.run([prefix / "bin" / "python", "-c", program + "; print(os.readlink('/proc/self/ns/mnt'))"])
    assert joined.stdout.decode().split() == [str(prefix), os.readlink(f"/proc/{replacement['pid']}/ns/mnt")]
