"""The pieces of the hostile-situations table (test_hostile.py): a scene per row, what a row
does to it (acts) and what must hold afterwards (checks).

A scene is a fresh directory of the user who runs the row, an empty build directory base
(CW_BUILD_TMPDIR) and an empty working directory, next to the session's pip installation,
which every failing row must leave working.
"""
import hashlib
import os
import re
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
        # Cold: a warm instance of a copy would outlive the row (and hold its directory busy).
        filled = {key: value.format(home=scene.home) for key, value in (env or {}).items()}
        filled.setdefault("TYKKY_WARM_MOUNTS", "0")
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
        assert one_paragraph(outcome.stderr), tail(outcome.stderr)
    return check


def one_paragraph(stderr: str) -> bool:
    """The tool's error is one message: after its "[ ERROR ]" line come only the failing
    tool's own lines, indented under it (the runtime's and click's errors are one line)."""
    lines = stderr.splitlines()
    starts = [number for number, line in enumerate(lines) if line.startswith("[ ERROR ]")]
    if not starts:
        return True
    return len(starts) == 1 and all(line.startswith((" ", "\t")) or not line.strip() for line in lines[starts[0] + 1:])


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


def processes_using(*paths: Path) -> List[str]:
    """Processes naming one of paths in their command line, or working in one of them; those
    still ending (killed a moment ago) get ten seconds to go."""
    def using() -> List[str]:
        found = []
        for pid, cmdline in processes_with(""):
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                cwd = ""
            if any(str(path) in cmdline or (cwd + "/").startswith(f"{path}/") for path in paths):
                found.append(f"{pid} in {cwd}: {cmdline}")
        return found
    for _ in range(20):
        if not using():
            break
        time.sleep(0.5)
    return using()


def nothing_left(scene: Scene, outcome: Outcome) -> None:
    """No build directory, no runtime cache in the working directory, no process still at work."""
    assert processes_using(scene.builds, scene.cwd) == [], tail(outcome.stderr)
    assert os.listdir(scene.builds) == [], tail(outcome.stderr)
    assert os.listdir(scene.cwd) == [], tail(outcome.stderr)


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


def complete_update(scene: Scene, outcome: Outcome) -> None:
    """The update was put in place whole: its package imports, and the prefix holds exactly the
    image layers its manifest names."""
    import json
    copy = outcome.extra["copy"]
    installation_works(copy, scene.who, "tomli")
    manifest = json.loads((copy / "_tykky" / "manifest.json").read_text())
    assert sorted(p.name for p in copy.glob("*.sqfs")) == sorted(layer["image"] for layer in manifest["layers"])
    assert not [p.name for p in copy.rglob(".*.tmp")]


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
