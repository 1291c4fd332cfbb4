"""The pieces of the hostile-situations table (test_hostile.py): a scene per row, what a row
does to it (acts) and what must hold afterwards (checks).

A scene is a fresh directory of the user who runs the row, an empty build directory base
(CW_BUILD_TMPDIR) and an empty working directory, next to the session's pip installation,
which every failing row must leave working.
"""
import errno
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from tests.helpers import REPO, User, default_signals, make_owned_dir, tool

# Imports a package that the installation has and the machine's Pythons do not.
PROBE = ("import importlib, sys; module = importlib.import_module(sys.argv[1]); print(sys.prefix); "
         "print(module.__file__)")


def probe_lines(prefix: Path, module: str = "yaml") -> bytes:
    """PROBE's output when the installation at prefix imports module."""
    return f"{prefix}\n{prefix}/lib/python3.11/site-packages/{module}/__init__.py\n".encode()
TINY_REQUIREMENTS = "tomli==2.0.1\n"
OTHER = {"root": "tykkytest", "user": "root"}


@dataclass
class Outcome:
    """What a row's command did: its exit code and stderr, and the paths the checks look at."""

    returncode: int
    stderr: str
    stdout: bytes = b""
    new_prefix: Optional[Path] = None  # a prefix a failed `new` must not leave behind
    installation: Optional[Path] = None  # an installation that must work afterwards
    expected_stdout: Optional[bytes] = None
    extra: Dict[str, object] = field(default_factory=dict)


@dataclass
class Scene:
    who: User
    other: User  # another user of the shared node
    pyz: Path
    home: Path
    builds: Path
    cwd: Path
    existing: Path
    filesystems: Dict[str, Path]
    # (log line, what to do then with the process): for the next command run
    on_line: Optional[Tuple[str, Callable[[subprocess.Popen], None]]] = None
    cleanups: List[Callable[[], object]] = field(default_factory=list)

    @property
    def prefix(self) -> Path:
        return self.home / "prefix"

    def environment(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        return {"CW_BUILD_TMPDIR": str(self.builds), **(extra or {})}

    def write(self, name: str, content, mode: int = 0o644, owner: Optional[User] = None) -> Path:  # type: ignore[no-untyped-def]
        path = self.home / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        owner = owner or self.who
        os.chown(path, owner.uid, owner.gid)
        path.chmod(mode)
        return path

    def directory(self, name: str, owner: Optional[User] = None, mode: int = 0o755) -> Path:
        path = make_owned_dir(self.home / name, owner or self.who)
        path.chmod(mode)
        return path

    def run(self, argv: Sequence, env: Optional[Dict[str, str]] = None, drop_dac: bool = False,
            timeout: float = 900) -> subprocess.CompletedProcess:
        """argv as the scene's user; drop_dac: without root's power to read any file."""
        if self.on_line:
            env = {**(env or {}), "CW_LOG_LEVEL": "3"}
        command = self.who.command(argv, self.who.environment(self.environment(env)))
        if drop_dac:
            command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] + command
        if not self.on_line:
            return subprocess.run(command, cwd=self.cwd, capture_output=True, timeout=timeout,
                                  preexec_fn=default_signals)
        at, action = self.on_line
        self.on_line = None
        process = subprocess.Popen(command, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   preexec_fn=lambda: (default_signals(), os.setpgrp()))
        return acted_on(process, at, action)

    def tykky(self, *arguments: str, env: Optional[Dict[str, str]] = None, drop_dac: bool = False,
              new_prefix: Optional[Path] = None, installation: Optional[Path] = None) -> Outcome:
        completed = self.run(tool(self.pyz, *arguments), env=env, drop_dac=drop_dac)
        return Outcome(completed.returncode, completed.stderr.decode(errors="replace"), completed.stdout,
                       new_prefix=new_prefix, installation=installation)

    def copy_of_existing(self, name: str = "inst", parent: Optional[Path] = None) -> Path:
        copy = (parent or self.home) / name
        self.who.run(["cp", "-a", str(self.existing), str(copy)])
        return copy

    def mount(self, name: str, *options: str, source: str = "tmpfs") -> Path:
        """A filesystem mounted (by root) at home/name, unmounted when the row ends."""
        path = self.directory(name)
        subprocess.run(["mount", *options, source, str(path)], check=True)
        self.cleanups.append(lambda: subprocess.run(["umount", "-l", str(path)], check=False))
        return path

    def small_filesystem(self, name: str, size: str) -> Path:
        return self.mount(name, "-t", "tmpfs", "-o", f"size={size},uid={self.who.uid},gid={self.who.gid},mode=755")

    def read_only_view(self, prefix: Path) -> Path:
        view = self.mount(prefix.name + "-ro", "--bind", source=str(prefix))
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        return view


Act = Callable[[Scene], Outcome]
Check = Callable[[Scene, Outcome], None]


# ---- inputs: what a file argument is
def text(content: str) -> Callable[[Scene, str], Path]:
    return lambda scene, name: scene.write(name, content)


def missing(scene: Scene, name: str) -> Path:
    return scene.home / name


def unreadable(scene: Scene, name: str) -> Path:
    return scene.write(name, "six\n", mode=0o000)


def directory(scene: Scene, name: str) -> Path:
    return scene.directory(name)


def binary(scene: Scene, name: str) -> Path:
    return scene.write(name, Path("/bin/true").read_bytes()[:4096])


def empty(scene: Scene, name: str) -> Path:
    return scene.write(name, "# nothing yet\n\n")


Input = Callable[[Scene, str], Path]


# ---- acts
def pip_new(requirements: Optional[Input] = None, *options: str, drop_dac: bool = False,
            **files: Input) -> Act:
    """pip-containerize new into the scene's prefix; files: option name -> input for it."""
    def act(scene: Scene) -> Outcome:
        arguments = list(options)
        for option, make in files.items():
            arguments += [f"--{option.replace('_', '-')}", str(make(scene, option))]
        return scene.tykky("pip-containerize", "new", "--prefix", str(scene.prefix), *arguments,
                           str((requirements or text(TINY_REQUIREMENTS))(scene, "requirements.txt")), drop_dac=drop_dac,
                           new_prefix=scene.prefix)
    return act


def conda_new(env_file: Input) -> Act:
    def act(scene: Scene) -> Outcome:
        return scene.tykky("conda-containerize", "new", "--prefix", str(scene.prefix),
                           str(env_file(scene, "environment.yml")), new_prefix=scene.prefix)
    return act


def command(*arguments: str) -> Act:
    """A tool command; {prefix} is the scene's prefix, {existing} the session's installation."""
    def act(scene: Scene) -> Outcome:
        filled = [a.format(prefix=scene.prefix, existing=scene.existing, home=scene.home) for a in arguments]
        return scene.tykky(*filled, new_prefix=scene.prefix)
    return act


def site_config(content: Optional[str] = None, make: Optional[Input] = None, **defaults: object) -> Act:
    """pip-containerize new with CW_GLOBAL_YAML: the test machine's config with some defaults
    changed, or a given text, or a path made by make."""
    def act(scene: Scene) -> Outcome:
        if make is not None:
            path = make(scene, "site.yaml")
        elif content is not None:
            path = scene.write("site.yaml", content)
        else:
            settings = yaml.safe_load((REPO / "configs" / "debian-test.yaml").read_text())
            settings["defaults"].update({k: v(scene) if callable(v) else v for k, v in defaults.items()})
            path = scene.write("site.yaml", yaml.safe_dump(settings))
        requirements = scene.write("requirements.txt", TINY_REQUIREMENTS)
        return scene.tykky("pip-containerize", "new", "--prefix", str(scene.prefix), str(requirements),
                           env={"CW_GLOBAL_YAML": str(path)}, new_prefix=scene.prefix)
    return act


def update_copy(*arguments: str, damage: Optional[Callable[[Scene, Path], None]] = None,
                env: Optional[Dict[str, str]] = None, parent: Optional[str] = None) -> Act:
    """pip-containerize update of a copy of the session's installation, damaged first if asked;
    the copy must work afterwards unless damaged."""
    def act(scene: Scene) -> Outcome:
        copy = scene.copy_of_existing(parent=scene.filesystems[parent] if parent else None)
        if damage:
            damage(scene, copy)
        requirements = scene.write("more.txt", TINY_REQUIREMENTS)
        filled = [a.format(requirements=requirements) for a in arguments]
        outcome = scene.tykky("pip-containerize", "update", str(copy), *filled,
                              env={key: value.format(home=scene.home) for key, value in (env or {}).items()})
        outcome.installation = None if damage else copy
        outcome.extra["copy"] = copy
        return outcome
    return act


def launch(program: Sequence[str], *, prepare: Optional[Callable[[Scene, Path], Path]] = None,
           env: Optional[Dict[str, str]] = None, expected: Optional[bytes] = None) -> Act:
    """Run bin/python of (a prepared copy of) the installation with program's arguments."""
    def act(scene: Scene) -> Outcome:
        prefix = prepare(scene, scene.copy_of_existing()) if prepare else scene.existing
        filled = {key: value.format(home=scene.home) for key, value in (env or {}).items()}
        completed = scene.run([prefix / "bin" / "python", *program], env=filled)
        return Outcome(completed.returncode, completed.stderr.decode(errors="replace"), completed.stdout,
                       installation=prefix, expected_stdout=expected)
    return act


def at_line(first: Act, at: str, action: Callable[[Scene, subprocess.Popen], None]) -> Act:
    """first, with action done to its process when a log line matching `at` appears
    (CW_LOG_LEVEL=3 shows every step)."""
    def act(scene: Scene) -> Outcome:
        scene.on_line = (at, lambda process: action(scene, process))
        return first(scene)
    return act


def interrupted(first: Act, at: str, number: int, group: bool) -> Act:
    """first, sent signal `number` at a log line: to the process group (Ctrl-C in a terminal)
    or to the tool's pid alone (kill)."""
    def send(scene: Scene, process: subprocess.Popen) -> None:
        (os.killpg if group else os.kill)(process.pid, number)
    return at_line(first, at, send)


def acted_on(process: subprocess.Popen, at: str,
             action: Callable[[subprocess.Popen], None]) -> subprocess.CompletedProcess:
    lines = []
    try:
        for raw in iter(process.stderr.readline, b""):
            lines.append(raw)
            if re.search(at, raw.decode(errors="replace")):
                action(process)
                break
        else:
            raise AssertionError(f"no line matched {at!r}:\n" + b"".join(lines).decode(errors="replace"))
        stdout, rest = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, b"".join(lines) + rest)


# ---- checks
def tail(text: str, lines: int = 12) -> str:
    """The end of a long stderr, for assertion messages."""
    return "\n".join(text.splitlines()[-lines:])


def error(*words: str) -> Check:
    """A clear error: non-zero exit, no traceback, no "unexpected error", the words in the message."""
    def check(scene: Scene, outcome: Outcome) -> None:
        assert outcome.returncode != 0, tail(outcome.stderr)
        assert "Traceback" not in outcome.stderr, outcome.stderr
        assert "Unexpected error" not in outcome.stderr, tail(outcome.stderr)
        for word in words:
            assert re.search(word, outcome.stderr, re.IGNORECASE), f"{word!r} not in:\n{tail(outcome.stderr)}"
    return check


def usage_error(*words: str) -> Check:
    def check(scene: Scene, outcome: Outcome) -> None:
        assert outcome.returncode == 2, outcome.stderr
        error(*words)(scene, outcome)
    return check


def no_new_prefix(scene: Scene, outcome: Outcome) -> None:
    """A failed new leaves no prefix and no staging directory next to it."""
    if outcome.new_prefix is None:
        return
    assert not os.path.lexists(outcome.new_prefix)
    staged = [p.name for p in outcome.new_prefix.parent.iterdir() if ".tykky-" in p.name and p.name.startswith(".")]
    assert staged == []


def processes_using(path: Path) -> List[str]:
    return [cmdline for _pid, cmdline in processes_with(str(path))]


def nothing_left(scene: Scene, outcome: Outcome) -> None:
    """No build directory, no runtime cache in the working directory, no process still at work."""
    assert os.listdir(scene.builds) == []
    assert os.listdir(scene.cwd) == []
    assert processes_using(scene.builds) == []


def installation_works(prefix: Path, who: User, module: str = "yaml", python: Optional[Path] = None) -> None:
    """python (bin/python of prefix) imports module from the installation, with sys.prefix the prefix."""
    completed = who.run([python or prefix / "bin" / "python", "-c", PROBE, module], check=False)
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    assert completed.stdout == probe_lines(prefix, module), completed.stdout


def existing_works(scene: Scene, outcome: Outcome) -> None:
    installation_works(scene.existing, scene.who)
    if outcome.installation is not None:
        installation_works(outcome.installation, scene.who)


def succeeded(scene: Scene, outcome: Outcome) -> None:
    assert outcome.returncode == 0, tail(outcome.stderr)
    if outcome.expected_stdout is not None:
        assert outcome.stdout == outcome.expected_stdout


def new_prefix_works(scene: Scene, outcome: Outcome) -> None:
    """The new installation (of TINY_REQUIREMENTS) works."""
    installation_works(outcome.new_prefix, scene.who, "tomli")


def no_leftovers_in(name: str) -> Check:
    """The installation copy holds only what the session's installation holds (no half layer)."""
    def check(scene: Scene, outcome: Outcome) -> None:
        copy = outcome.extra["copy"]
        assert sorted(os.listdir(copy)) == sorted(os.listdir(scene.existing)), name
        manifest = Path("_tykky", "manifest.json")
        assert (copy / manifest).read_bytes() == (scene.existing / manifest).read_bytes()
    return check


def failed(*words: str) -> Tuple[Check, ...]:
    """What every failure must hold, with the words its message must contain."""
    return (error(*words), no_new_prefix, nothing_left, existing_works)


def works(*more: Check) -> Tuple[Check, ...]:
    return (succeeded, nothing_left, existing_works) + more


# ---- damage done to a copy of the installation
def truncate(name: str, keep: int = 4096) -> Callable[[Scene, Path], None]:
    def damage(scene: Scene, prefix: Path) -> None:
        os.truncate(prefix / name, keep)
    return damage


def remove(name: str) -> Callable[[Scene, Path], None]:
    def damage(scene: Scene, prefix: Path) -> None:
        os.unlink(prefix / name)
    return damage


def overwrite(name: str, content: bytes) -> Callable[[Scene, Path], None]:
    def damage(scene: Scene, prefix: Path) -> None:
        (prefix / name).write_bytes(content)
    return damage


def argv_program() -> List[str]:
    return ["-c", "import hashlib, os, sys; sys.stdout.write(hashlib.sha256(b'\\0'.join("
                  "os.fsencode(a) for a in sys.argv[1:])).hexdigest())"]


# Under the kernel's 128 KiB per argument: every byte value but NUL (so not UTF-8), or text.
BINARY_PIECE = bytes(range(1, 256)) * 500
TEXT_PIECE = "ÄäÖö€ 'quoted' \"double\" back\\slash $HOME `x` *?[ ]\ttab\nnewline ".encode() * 1700


def huge_arguments(total: int, piece: bytes = BINARY_PIECE) -> List[bytes]:
    """Arguments cut from piece, `total` bytes in all."""
    arguments, size = [], 0
    while size + len(piece) + 1 < total:
        arguments.append(piece)
        size += len(piece) + 1
    last = piece[: max(1, total - size - 1)]
    if piece is TEXT_PIECE:  # not a character cut in half
        last = last.decode(errors="ignore").encode()
    arguments.append(last)
    return arguments


def digest(arguments: Sequence[bytes]) -> bytes:
    return hashlib.sha256(b"\0".join(arguments)).hexdigest().encode()


# ---- acts for single rows
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
    completed = scene.run([scene.home / "mybin" / "python", "-c", PROBE, "yaml"])
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
    import json
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


def truncated_copy(scene: Scene) -> Path:
    """The first 10 MiB of the base image."""
    from tests.helpers import BASE_IMAGE
    with open(BASE_IMAGE, "rb") as source:
        return scene.write("base.sif", source.read(10 * 1024 * 1024))


def damaged(damage: Callable[[Scene, Path], None]) -> Callable[[Scene, Path], Path]:
    def prepare(scene: Scene, prefix: Path) -> Path:
        damage(scene, prefix)
        return prefix
    return prepare


def broken_warm_mount(scene: Scene) -> Outcome:
    """A warm instance of (a copy of) the installation whose squashfuse mount died: the next
    launch must still work (cold), not fail for as long as the instance lives."""
    import pytest
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


def processes_with(text: str) -> List[Tuple[int, str]]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append((int(pid), cmdline))
    return found
