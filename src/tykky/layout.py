"""The files of an installation prefix, written so that each change is atomic.

    bin/<name>        -> ../_tykky/launcher   (what users run)
    _bin/<name>       -> in-container target  (covers bin/ inside the container)
    _tykky/launcher (stub carrying the byte code of the modules and a copy of the manifest),
    _tykky/tykky_contract.py, tykky_warm.py, tykky_launcher.py, _tykky/manifest.json
    pyvenv.cfg, lib/pythonX.Y/site-packages   (the prefix reads as a venv of its Python)
    share/tykky/      resolved config, tool version, inputs of every build

Used for new installations (in a staging directory) and for updates (in place): every entry is
replaced by a rename, so a program starting meanwhile sees the old or the new entry, never none.
"""
import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Mapping, Optional

from tykky_shim import contract

from tykky import manifest as manifest_module
from tykky import runner
from tykky._compat import resources
from tykky.errors import TykkyError
from tykky.manifest import Manifest

LAUNCHER = "_tykky/launcher"
DEBUG_PROGRAMS = ("_debug_exec", "_debug_shell")
# Names that _bin needs for itself (the venv view); never wrapped as programs.
RESERVED_NAMES = ("lib", "include") + DEBUG_PROGRAMS


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def replace_symlink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(target, temporary)
    os.replace(temporary, path)


def replace_file(path: Path, content: bytes, executable: bool = False) -> None:
    """Write a file atomically; its mode follows the umask like any file the user makes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_sibling(path)
    mode = 0o777 if executable else 0o666
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


# shim/ file -> its name in <prefix>/_tykky/
# Each is imported as tykky_<name> there, as tykky_shim.<name> by the builder (launcher.load_module).
# The launcher goes last: a launch during an update must not find it without the modules it imports.
LAUNCHER_MODULES = {"contract.py": "tykky_contract.py", "warm.py": "tykky_warm.py",
                    "launcher.py": "tykky_launcher.py"}
# Installed by earlier versions, no longer read: removed when the launcher is installed again.
FORMER_LAUNCHER_MODULES = ("tykky_diagnose.py",)
# What bin/ entries lead to. A launch on a parallel filesystem pays a metadata request for every
# file it opens: the stub carries the byte code of the launcher's modules for its interpreter
# and the contract's copy of the manifest (contract.manifest_copy), so that a launch opens this
# file and nothing else of the installation. The copy is used while manifest.json is the file it
# was copied from, and read as the file would be (converted from its format, defaults filled in).
# The contract runs first: the launcher imports it. Another interpreter (an upgraded one, whose
# byte code differs) imports the modules beside the stub instead.
LAUNCHER_STUB = """#!{interpreter} -IS
# Written by tykky: the byte code of the launcher's modules for {interpreter}, a copy of manifest.json.
import sys
PAYLOAD = {payload}
if PAYLOAD[:4] == sys.modules["_frozen_importlib_external"].MAGIC_NUMBER:
    import marshal
    embedded = marshal.loads(PAYLOAD[4:])
    for name in ("contract", "launcher"):  # what the launcher imports first; then the launcher
        module = sys.modules["tykky_" + name] = type(sys)("tykky_" + name)
        module.__file__ = __file__
        exec(embedded["modules"].pop(name), module.__dict__)
    module.EMBEDDED.update(embedded)  # the other modules, loaded when needed, and the manifest
    module.main()
else:
    import os
    sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
    from tykky_launcher import main
    main()
"""
# Run by the launcher's interpreter: the payload (stdin: the manifest's copy and the modules'
# paths), as a bytes literal, to argv[1].
COMPILE_LAUNCHER = """
import json, marshal, sys
from importlib.util import MAGIC_NUMBER
payload = json.loads(sys.stdin.read())
for name, path in payload["modules"].items():
    with open(path, "rb") as handle:
        payload["modules"][name] = compile(handle.read(), path, "exec", dont_inherit=True)
with open(sys.argv[1], "w") as handle:
    handle.write(repr(MAGIC_NUMBER + marshal.dumps(payload)))
"""


def check_interpreter(interpreter: str) -> None:
    if " " in interpreter or not os.path.isabs(interpreter):
        raise TykkyError(f"The launcher interpreter '{interpreter}' must be an absolute path "
                         "without spaces. Set launcher_python in the configuration.")


def install_launcher(prefix: Path, interpreter: str) -> None:
    """The launcher modules and the stub bin/ entries point at, which carries a copy of the
    manifest there is (install it again, or write_stub, after writing the manifest)."""
    check_interpreter(interpreter)
    cache = prefix / "_tykky" / "__pycache__"
    if cache.is_dir():
        shutil.rmtree(cache)
    for source, installed in LAUNCHER_MODULES.items():
        replace_file(prefix / "_tykky" / installed, resources.files("tykky_shim").joinpath(source).read_bytes())
    for former in FORMER_LAUNCHER_MODULES:
        if (prefix / "_tykky" / former).exists():
            (prefix / "_tykky" / former).unlink()
    write_stub(prefix, interpreter)


def write_stub(prefix: Path, interpreter: str) -> None:
    """The stub, with the byte code of the installed modules and a copy of manifest.json."""
    modules = {source[: -len(".py")]: str(prefix / "_tykky" / installed)
               for source, installed in LAUNCHER_MODULES.items()}
    embedded = {"modules": modules, "manifest": contract.manifest_copy(str(prefix))}
    payload = _temporary_sibling(prefix / "_tykky" / "payload")
    try:
        runner.run([interpreter, "-IS", "-c", COMPILE_LAUNCHER, str(payload)],
                   stdin_text=json.dumps(embedded), what=f"byte-compiling the launcher with {interpreter}")
        stub = LAUNCHER_STUB.format(interpreter=interpreter, payload=payload.read_text())
    finally:
        if payload.exists():
            payload.unlink()
    replace_file(prefix / LAUNCHER, stub.encode(), executable=True)


def refresh_launcher(prefix: Path) -> None:
    """The launcher again, for the stub's own interpreter, after the manifest alone changed."""
    first_line = (prefix / LAUNCHER).read_text().split("\n", 1)[0]
    install_launcher(prefix, first_line[2:].split()[0])


def link_programs(prefix: Path, targets: Mapping[str, str], previous: Iterable[str] = ()) -> None:
    """bin/ and _bin/ entries for every target; entries of dropped targets are removed."""
    for name, target in sorted(targets.items()):
        replace_symlink(prefix / "_bin" / name, target)
    for name in list(targets) + list(DEBUG_PROGRAMS):
        replace_symlink(prefix / "bin" / name, f"../{LAUNCHER}")
    for name in set(previous) - set(targets):
        for folder in ("bin", "_bin"):
            entry = prefix / folder / name
            if entry.is_symlink():
                entry.unlink()


def write_venv_view(prefix: Path, python: Optional[Mapping[str, str]], system_site: bool) -> None:
    """Make the prefix read as a venv of the installation's Python.

    pyvenv.cfg deliberately has no `home`: Python then takes sys._base_executable to be the
    wrapper itself, so `python -m venv` on top links to the wrapper and stays usable from the
    host, and it finds its standard library from the target _bin/python resolves to. A venv
    on top has home = <prefix>/bin, where _bin/lib and _bin/include lead to that library.
    """
    if not python:
        return
    version = python["version"]
    config = (
        "# The prefix of a tykky installation reads as a venv of the Python in its container.\n"
        f"include-system-site-packages = {'true' if system_site else 'false'}\n"
        f"version = {python['full_version']}\n"
    )
    replace_file(prefix / "pyvenv.cfg", config.encode())
    replace_symlink(prefix / "lib" / f"python{version}" / "site-packages", python["site_packages"])
    replace_symlink(prefix / "_bin" / "lib", python["stdlib_parent"])
    if python.get("include_parent"):
        replace_symlink(prefix / "_bin" / "include", python["include_parent"])


def write_installation(prefix: Path, manifest: Manifest, *, interpreter: str,
                       system_site: bool, previous: Optional[Manifest] = None) -> None:
    """Everything except the images; the manifest goes last, so it never names a missing file,
    and a launcher that reads it is in place before it (the stub's copy of it after it: until
    then a launch reads the file)."""
    install_launcher(prefix, interpreter)
    link_programs(prefix, manifest.targets, previous.targets if previous else ())
    write_venv_view(prefix, manifest.python, system_site)
    manifest_module.write(manifest, prefix)
    write_stub(prefix, interpreter)
