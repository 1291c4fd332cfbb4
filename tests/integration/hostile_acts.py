"""Acts of single rows of the hostile-situations table (test_hostile.py): planted files, full
filesystems, damaged installations, huge argument lists, concurrent writers."""
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import List

import pytest

from tests.helpers import make_owned_dir, tool
from tests.integration.hostile import (
    BINARY_PIECE,
    PROBE,
    TINY_REQUIREMENTS,
    Act,
    Outcome,
    Scene,
    argv_program,
    at_line,
    digest,
    huge_arguments,
    pip_new,
    probe_lines,
    processes_with,
    site_config,
    truncated_copy,
)


def full_filesystem(scene: Scene, path: Path, room: int = 64 * 1024) -> None:
    """Fill the filesystem at path up to `room` free bytes."""
    info = os.statvfs(path)
    filler = path / "filler"
    with open(filler, "wb") as handle:
        handle.truncate(0)
        os.posix_fallocate(handle.fileno(), 0, max(0, info.f_bavail * info.f_frsize - room))
    os.chown(filler, scene.who.uid, scene.who.gid)


def new_in_small_filesystem(where: str, size: str) -> Act:
    """pip new with the build directory (where="build") or the prefix (where="prefix") on a
    small filesystem."""
    def act(scene: Scene) -> Outcome:
        small = scene.small_filesystem("small", size)
        if where == "build":
            scene.builds = small
        else:
            scene.home = small
        return pip_new()(scene)
    return act


def update_on_full_filesystem(where: str) -> Act:
    """pip update of a copy of the installation, with the prefix's or the build directory's
    filesystem full."""
    def act(scene: Scene) -> Outcome:
        space = scene.small_filesystem("small", "400m")
        if where == "build":
            scene.builds = space
            copy = scene.copy_of_existing()
        else:
            copy = scene.copy_of_existing(parent=space)
        full_filesystem(scene, space, room=0)
        requirements = scene.write("more.txt", TINY_REQUIREMENTS)
        outcome = scene.tykky("pip-containerize", "update", str(copy), "-r", str(requirements), installation=copy)
        os.unlink(space / "filler")
        outcome.extra["copy"] = copy
        return outcome
    return act


def planted_warm_directory(kind: str) -> Act:
    """Launch warm with the state directory planted by another user: theirs, world-writable,
    or a symlink to theirs. The launch must work and leave their directory alone."""
    def act(scene: Scene) -> Outcome:
        theirs = scene.directory("theirs", owner=scene.other, mode=0o777 if kind == "world-writable" else 0o700)
        state = scene.home / "warm-state"
        if kind == "symlink":
            os.symlink(theirs, state)
        else:
            state = theirs
        completed = scene.run([scene.existing / "bin" / "python", "-c", PROBE, "yaml"],
                              env={"TYKKY_WARM_DIR": str(state), "TYKKY_WARM_MOUNTS": "1"})
        outcome = Outcome(completed.returncode, completed.stderr.decode(errors="replace"), completed.stdout,
                          expected_stdout=probe_lines(scene.existing))
        outcome.extra["untouched"] = theirs
        return outcome
    return act


def untouched(scene: Scene, outcome: Outcome) -> None:
    """What another user planted is as they left it."""
    path = outcome.extra["untouched"]
    assert path.stat().st_uid == scene.other.uid
    assert sorted(os.listdir(path)) == sorted(outcome.extra.get("planted", []))


def planted_staging(scene: Scene) -> Outcome:
    """pip new into a shared (sticky, world-writable) directory, where another user plants the
    name a staging directory next to the prefix would have, once the build is under way."""
    shared = scene.directory("shared", mode=0o1777)
    scene.home = shared

    def plant(process: subprocess.Popen) -> None:
        theirs = shared / f".prefix.tykky-{process.pid}"
        theirs.mkdir(mode=0o777)
        (theirs / "their-file").write_text("theirs\n")
        os.chown(theirs / "their-file", scene.other.uid, scene.other.gid)
        os.chown(theirs, scene.other.uid, scene.other.gid)
        scene.cleanups.append(lambda: shutil.rmtree(theirs, ignore_errors=True))
        outcome.extra["untouched"] = theirs

    outcome = Outcome(0, "")
    scene.on_line = ("Creating the squashfs image", plant)
    result = pip_new()(scene)
    outcome.returncode, outcome.stderr, outcome.new_prefix = result.returncode, result.stderr, result.new_prefix
    outcome.extra["planted"] = ["their-file"]
    return outcome


def shared_build_base(scene: Scene) -> Outcome:
    """A failing build in a sticky world-writable build base where another user has build
    directories and planted symlinks: ours is removed, theirs stay."""
    base = scene.directory("builds-shared", mode=0o1777)
    theirs = make_owned_dir(base / "cw-theirs", scene.other)
    (base / "cw-link").symlink_to(scene.existing)
    os.lchown(base / "cw-link", scene.other.uid, scene.other.gid)
    scene.builds = base
    # Fails once its build directory is made: the container is found to be truncated.
    outcome = site_config(container_src=lambda scene: str(truncated_copy(scene)))(scene)
    assert sorted(os.listdir(base)) == ["cw-link", "cw-theirs"]
    assert theirs.stat().st_uid == scene.other.uid
    (base / "cw-link").unlink()
    theirs.rmdir()
    return outcome


def read_only_build_base(scene: Scene) -> Outcome:
    """CW_BUILD_TMPDIR names a directory nobody may write to (another user's, read-only)."""
    base = scene.read_only_view(scene.directory("their-builds", owner=scene.other))
    return build_directory(str(base))(scene)


def update_read_only(scene: Scene) -> Outcome:
    view = scene.read_only_view(scene.copy_of_existing())
    requirements = scene.write("more.txt", TINY_REQUIREMENTS)
    return scene.tykky("pip-containerize", "update", str(view), "-r", str(requirements), installation=view)


def read_only(scene: Scene, prefix: Path) -> Path:
    return scene.read_only_view(prefix)


def moved(scene: Scene, prefix: Path) -> Path:
    destination = scene.home / "moved"
    scene.who.run(["mv", str(prefix), str(destination)])
    return destination


def user_symlink(scene: Scene, prefix: Path) -> Path:
    (scene.home / "mybin").mkdir()
    os.symlink(prefix / "bin" / "python", scene.home / "mybin" / "python")
    return prefix


def through_user_symlink(scene: Scene) -> Outcome:
    prefix = user_symlink(scene, scene.copy_of_existing())
    completed = scene.run([scene.home / "mybin" / "python", "-c", PROBE, "yaml"], env={"TYKKY_WARM_MOUNTS": "0"})
    return Outcome(completed.returncode, completed.stderr.decode(errors="replace"), completed.stdout,
                   installation=prefix,
                   expected_stdout=probe_lines(prefix))


def huge_argv(total: int, warm: bool, piece: bytes = BINARY_PIECE) -> Act:
    """bin/python given `total` bytes of arguments (every byte value but NUL), or, with total 0,
    as many as the kernel lets the wrapper itself start with."""
    def act(scene: Scene) -> Outcome:
        env = scene.who.environment(scene.environment({"TYKKY_WARM_MOUNTS": "1" if warm else "0"}))
        if warm:  # the first launch starts the instance: wait for it
            scene.who.run([scene.existing / "bin" / "python", "-c", "pass"], env={"TYKKY_WARM_MOUNTS": "1"})
            wait_for_instance(scene)
        wrapper = scene.who.command([scene.existing / "bin" / "python", *argv_program()], env)
        for size in [total] if total else range(os.sysconf("SC_ARG_MAX"), 0, -2048):
            arguments = huge_arguments(size, piece)
            try:
                completed = subprocess.run(wrapper + arguments, cwd=scene.cwd, capture_output=True, timeout=300)
                break
            except OSError as exc:  # E2BIG: too long for the kernel to start the wrapper at all
                if exc.errno != errno.E2BIG or total:
                    raise
        return Outcome(completed.returncode, completed.stderr.decode(errors="replace"), completed.stdout,
                       expected_stdout=digest(arguments))
    return act


def wait_for_instance(scene: Scene) -> None:
    for _ in range(120):
        listing = scene.who.run(tool(scene.pyz, "warm", "status", str(scene.existing))).stdout.decode()
        if str(scene.existing) in listing:
            return
        time.sleep(0.5)
    raise AssertionError("no warm instance started")


def two_updates_at_once(scene: Scene) -> Outcome:
    """Two updates of one installation started together: each one's package must be there."""
    copy = scene.copy_of_existing()
    processes = []
    for name in ("a", "b"):
        script = scene.write(f"{name}.sh", f"echo {name} > $VIRTUAL_ENV/from-{name}.txt\n")
        command = scene.who.command(tool(scene.pyz, "pip-containerize", "update", str(copy), "--post-install",
                                         str(script)), scene.who.environment(scene.environment()))
        processes.append(subprocess.Popen(command, cwd=scene.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = [(p.wait(timeout=600), p.stderr.read().decode(errors="replace")) for p in processes]
    listing = scene.who.run([copy / "bin" / "_debug_exec", "ls", "/TYKKY/venv"]).stdout.decode().split()
    outcome = Outcome(max(code for code, _ in results), "\n".join(err for _, err in results), installation=copy)
    outcome.extra.update(results=results, listing=listing)
    return outcome


def every_update_kept(scene: Scene, outcome: Outcome) -> None:
    """An update that exited 0 has its package in the installation; one that did not, said why."""
    for (code, stderr), name in zip(outcome.extra["results"], ("a", "b")):
        if code == 0:
            assert f"from-{name}.txt" in outcome.extra["listing"], outcome.extra["listing"]
        else:
            assert "Traceback" not in stderr and re.search("lock|another|busy", stderr, re.I), stderr


def new_over_installation(scene: Scene) -> Outcome:
    copy = scene.copy_of_existing()
    requirements = scene.write("requirements.txt", TINY_REQUIREMENTS)
    outcome = scene.tykky("pip-containerize", "new", "--prefix", str(copy), str(requirements))
    outcome.new_prefix = copy
    return outcome


def build_directory(value: str) -> Act:
    """pip new with CW_BUILD_TMPDIR set to value ({home}: the scene's directory)."""
    def act(scene: Scene) -> Outcome:
        requirements = scene.write("requirements.txt", TINY_REQUIREMENTS)
        return scene.tykky("pip-containerize", "new", "--prefix", str(scene.prefix), str(requirements),
                           env={"CW_BUILD_TMPDIR": value.format(home=scene.home)}, new_prefix=scene.prefix)
    return act


def step_sharing_with_bare_runtime_name(scene: Scene) -> Outcome:
    """Two tasks of a Slurm step, with the installation recording the runtime by its bare name
    (as Tykky's example configs give it): they must still share one container."""
    copy = scene.copy_of_existing()
    manifest = json.loads((copy / "_tykky" / "manifest.json").read_text())
    manifest["runtime"]["path"] = "apptainer"
    (copy / "_tykky" / "manifest.json").write_text(json.dumps(manifest))
    completed = scene.run(["srun", "-n2", "--export=ALL,TYKKY_LAUNCHER_DRY_RUN=1", str(copy / "bin" / "python"),
                           "-c", "pass"])
    outcome = Outcome(completed.returncode, completed.stderr.decode(errors="replace"), completed.stdout)
    outcome.extra["shared"] = completed.stdout.count(b"--sharens")
    return outcome


def both_tasks_share(scene: Scene, outcome: Outcome) -> None:
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.extra["shared"] == 2, outcome.stdout


def broken_warm_mount(scene: Scene) -> Outcome:
    """A warm instance of (a copy of) the installation whose squashfuse mount died: the next
    launch must still work (cold), not fail for as long as the instance lives."""
    if scene.who.is_root:
        pytest.skip("root's instances mount their images in the kernel: there is no squashfuse to die")
    copy = scene.copy_of_existing()
    warm = {"TYKKY_WARM_DIR": str(scene.directory("warm", mode=0o700)), "TYKKY_WARM_MOUNTS": "1"}
    scene.who.run([copy / "bin" / "python", "-c", "pass"], env=warm)
    scene.cleanups.append(lambda: scene.who.run(tool(scene.pyz, "warm", "stop", "--force", str(copy)), env=warm,
                                                check=False))
    for _ in range(120):
        if str(copy) in scene.who.run(tool(scene.pyz, "warm", "status", str(copy)), env=warm).stdout.decode():
            break
        time.sleep(0.5)
    mounts = squashfuse_of_instance(Path(warm["TYKKY_WARM_DIR"]))
    assert mounts, "the instance has no squashfuse process"
    for pid in mounts:
        os.kill(pid, signal.SIGKILL)
    completed = scene.run([copy / "bin" / "python", "-c", PROBE, "yaml"], env=warm)
    return Outcome(completed.returncode, completed.stderr.decode(errors="replace"), completed.stdout,
                   installation=copy, expected_stdout=probe_lines(copy))


def squashfuse_of_instance(state: Path) -> List[int]:
    """The squashfuse processes of the one instance whose state is in `state`: children of
    the runtime's "Apptainer instance: USER [NAME]" process."""
    (name,) = [path.stem for path in state.glob("*.json")]
    (instance,) = [pid for pid, cmdline in processes_with(f"[{name}]") if cmdline.startswith("Apptainer instance")]
    children = []
    for pid, _cmdline in processes_with("squashfuse"):
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if parent == instance:
            children.append(pid)
    return children


def interrupted_post_install(commands: str) -> Act:
    """new with long post-install commands, the tool alone killed (SIGTERM) while they run:
    what runs in the container must stop with it."""
    def act(scene: Scene) -> Outcome:
        def send(scene: Scene, process: subprocess.Popen) -> None:
            time.sleep(1)  # the commands have started
            os.kill(process.pid, signal.SIGTERM)
        script = lambda scene, name: scene.write(name, commands)  # noqa: E731
        return at_line(pip_new(post_install=script), "Running the post-install commands", send)(scene)
    return act


def unmount_after_warm_launch(scene: Scene) -> Outcome:
    """A warm launch from a directory on a filesystem of its own (a job's scratch), then that
    filesystem unmounted: nothing of the installation may keep it busy."""
    copy = scene.copy_of_existing()
    warm = {"TYKKY_WARM_DIR": str(scene.directory("warm", mode=0o700)), "TYKKY_WARM_MOUNTS": "1"}
    scratch = scene.small_filesystem("scratch", "1m")
    scene.cleanups.append(lambda: scene.who.run(tool(scene.pyz, "warm", "stop", "--force", str(copy)), env=warm,
                                                check=False))
    scene.who.run([copy / "bin" / "python", "-c", "pass"], env=warm, cwd=scratch)
    for _ in range(120):
        if str(copy) in scene.who.run(tool(scene.pyz, "warm", "status", str(copy)), env=warm).stdout.decode():
            break
        time.sleep(0.5)
    completed = subprocess.run(["umount", str(scratch)], capture_output=True)
    return Outcome(completed.returncode, completed.stderr.decode(errors="replace"), completed.stdout)
