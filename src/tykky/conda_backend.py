"""Where the conda solver and installer (py-rattler) comes from, and running it.

py-rattler is a 25 MB native wheel for Python >= 3.10, so the tool does not import it: pip mode
and the wrap commands never need it, and the builder keeps running on Python >= 3.6. Conda mode
runs `conda_worker.py` as its own process with a Python that can import py-rattler, found in
this order:

1. a py-rattler beside tykky (installed with it, or bundled into a zipapp built with
   `build_zipapp.py --with-conda`), run by the running Python when that is >= 3.10, else by the
   solver Python (see 3.);
2. the directory `rattler_path` (site configuration; a site installs it once for everyone),
   else the per-user cache `${XDG_CACHE_HOME:-~/.cache}/tykky/py-rattler-<version>`;
3. otherwise it is installed there once, from the package index, with `python -m pip install
   --target`, by the solver Python: `rattler_python` (configuration), else the running Python,
   else the first of python3.14 ... python3.10, then python3, on PATH and in /usr/bin that is
   >= 3.10 (never from a pyenv-style shims directory, as tykky.pyz's own search).
"""
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

from tykky import log, runner
from tykky._compat import resources
from tykky.config import Config
from tykky.errors import TykkyError

if TYPE_CHECKING:
    from tykky.container_exec import BuildContainer

RATTLER_VERSION = "0.28.0"
MINIMUM_PYTHON = (3, 10)
PYTHON_CANDIDATES = tuple(f"python3.{minor}" for minor in range(14, MINIMUM_PYTHON[1] - 1, -1))
SYSTEM_DIRECTORIES = ["/usr/bin"]
WORKER = "conda_worker.py"


@dataclass(frozen=True)
class Backend:
    python: str  # interpreter that runs the worker
    site: str  # directory put first on its sys.path ("" when the interpreter imports rattler itself)


def _version_of(python: str) -> Optional[Tuple[int, int]]:
    completed = runner.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           what=f"asking {python} for its version", check=False)
    text = completed.output.strip().splitlines()[-1:] if completed.returncode == 0 else []
    try:
        major, minor = text[0].split(".")
        return int(major), int(minor)
    except (IndexError, ValueError):
        return None


def running_python_can_solve() -> bool:
    return sys.version_info[:2] >= MINIMUM_PYTHON


def python_candidates() -> List[str]:
    """python3.14 ... python3.10, then python3, in each PATH directory and /usr/bin, in that order."""
    directories = [d.rstrip("/") or "/" for d in os.environ.get("PATH", "").split(os.pathsep) + SYSTEM_DIRECTORIES]
    usable = [d for d in dict.fromkeys(directories) if os.path.isabs(d) and os.path.basename(d) != "shims"]
    paths = [os.path.join(d, name) for name in PYTHON_CANDIDATES + ("python3",) for d in usable]
    return [path for path in paths if os.path.isfile(path) and os.access(path, os.X_OK)]


def solver_python(config: Config) -> str:
    """An interpreter that can run py-rattler: >= 3.10."""
    if config.rattler_python:
        version = _version_of(config.rattler_python)
        if version is None or version < MINIMUM_PYTHON:
            raise TykkyError(f"rattler_python is {config.rattler_python}, which is not a Python >= 3.10. "
                             "Set it to a Python 3.10 or newer (the conda solver needs one).")
        return config.rattler_python
    if running_python_can_solve():
        return sys.executable
    for found in python_candidates():
        if (_version_of(found) or (0, 0)) >= MINIMUM_PYTHON:
            log.info(f"The conda solver runs with {found} (it needs Python >= 3.10, tykky runs on "
                     f"{sys.version.split()[0]})")
            return found
    raise TykkyError(
        f"conda-containerize needs a Python >= 3.10 for its solver (py-rattler); tykky runs on Python "
        f"{sys.version.split()[0]} and found no python3.10 or newer on PATH or in /usr/bin. Load one "
        "(for example with `module load python`) and run the command again, or set `rattler_python: "
        "/path/to/python3.X` in the site configuration (CW_GLOBAL_YAML) or in the CONF.yaml of "
        "`conda-containerize advanced`. pip-containerize and the wrap commands work with this Python."
    )


def cache_directory(config: Config) -> Path:
    if config.rattler_path:
        return Path(config.rattler_path).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tykky" / f"py-rattler-{RATTLER_VERSION}"


def has_rattler(site: Path) -> bool:
    return (site / "rattler" / "__init__.py").is_file()


def importable_rattler() -> str:
    """The directory holding a py-rattler beside tykky, else "" (found, not imported)."""
    try:
        spec = importlib.util.find_spec("rattler")
    except (ImportError, ValueError):
        return ""
    if spec is None or not spec.origin:
        return ""
    return str(Path(spec.origin).parent.parent)


def install_rattler(python: str, site: Path) -> None:
    """pip install --target into a sibling directory, renamed into place: never half installed."""
    log.info(f"Installing the conda solver py-rattler {RATTLER_VERSION} into {site} (once)")
    try:
        site.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TykkyError(f"Cannot create {site.parent}: {exc.strerror}. Set rattler_path in the "
                         "configuration to a writable directory.") from None
    staging = site.with_name(f".{site.name}.{os.getpid()}.tmp")
    try:
        runner.run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", "--quiet",
                    "--only-binary=:all:", "--target", str(staging), f"py-rattler=={RATTLER_VERSION}"],
                   what=f"installing py-rattler {RATTLER_VERSION} with {python} -m pip")
        try:
            os.rename(staging, site)
        except OSError:
            if not has_rattler(site):  # else a concurrent build placed it first: use that one
                raise
    except TykkyError as error:
        raise TykkyError(f"Could not install the conda solver py-rattler {RATTLER_VERSION} with {python}. "
                         f"Install it yourself with `{python} -m pip install --target {site} "
                         f"py-rattler=={RATTLER_VERSION}` (or set rattler_path to a directory that "
                         "has it), then run the command again.", details=error.details) from None
    except OSError as exc:
        raise TykkyError(f"Cannot place py-rattler into {site}: {exc.strerror}.") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def find_backend(config: Config) -> Backend:
    bundled = importable_rattler()
    if bundled and not config.rattler_path:
        python = sys.executable if running_python_can_solve() else solver_python(config)
        return Backend(python=python, site=bundled)
    site = cache_directory(config)
    python = solver_python(config)
    if not has_rattler(site):
        install_rattler(python, site)
    return Backend(python=python, site=str(site))


def worker_source() -> str:
    return resources.files("tykky").joinpath(WORKER).read_text()


class SolverFailure(TykkyError):
    """The worker's own account of a failure; `kind` says which step failed (see conda_worker.py)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"The conda solver failed ({kind}).", details=indent(message))
        self.kind = kind


def run_worker(backend: Backend, request: Mapping[str, Any], workdir: Path,
               container: Optional["BuildContainer"] = None) -> Dict[str, Any]:
    """Run one solve-and-install in the worker process; its failures raise SolverFailure.

    With a container (an update over image layers) the worker runs inside it, so that it reads
    the installed records and writes its changes through the container's writable layer.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    script, request_file, response_file = (workdir / WORKER, workdir / "request.json", workdir / "response.json")
    script.write_text(worker_source())
    request_file.write_text(json.dumps(dict(request, rattler_path=backend.site), indent=1))
    if response_file.exists():
        response_file.unlink()
    argv = [backend.python, "-I", str(script), str(request_file), str(response_file)]
    what = "solving and installing the conda packages"
    if container is None:
        completed = runner.run(argv, what=what, check=False)
    else:
        binds = _backend_binds(backend) if container.config.isolate else []
        completed = container.run(argv, what=what, check=False, extra_binds=binds)
    try:
        response: Dict[str, Any] = json.loads(response_file.read_text())
    except (OSError, ValueError):
        raise TykkyError(f"The conda solver process ended without an answer (exit code {completed.returncode}).",
                         details=runner.error_lines(completed.output)) from None
    if not response.get("ok"):
        log.debug(response.get("traceback", ""))
        raise SolverFailure(response.get("kind", "internal"), response.get("message", ""))
    return response


def _backend_binds(backend: Backend) -> List[str]:
    """The worker's interpreter installation and py-rattler, for containers that bind little."""
    root = str(Path(os.path.realpath(backend.python)).parents[1])
    return ([root] if root not in ("/", "/usr") else []) + ([backend.site] if backend.site else [])


def indent(text: str) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines())
