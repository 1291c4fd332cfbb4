"""Getting the container image a build runs in and an installation ships."""
import os
import shutil
from pathlib import Path

from tykky import log, runner
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.runtime import Runtime, clean_environment

REMOTE_SCHEMES = ("docker://", "oras://", "library://", "shub://", "docker-daemon://", "https://")


def is_remote(source: str) -> bool:
    return source.startswith(REMOTE_SCHEMES)


def obtain(source: str, runtime: Runtime, build: Path) -> Path:
    """A local path to the container: the file or sandbox itself, or a fresh pull into build."""
    if not source:
        raise TykkyError("No container given: set container_src in the configuration "
                         "(a .sif file, a sandbox directory or a docker:// reference).")
    if not is_remote(source):
        path = Path(source).expanduser().absolute()
        if not path.exists():
            raise TykkyError(f"The container {source} does not exist. Give an existing .sif "
                             "file or sandbox directory, or a docker://, oras:// or library:// reference.")
        return path
    destination = build / "pulled.sif"
    environment = clean_environment(os.environ)
    # The runtime's cache goes into the build directory, removed with it.
    environment[f"{runtime.name.upper()}_CACHEDIR"] = str(build / "cache")
    log.info(f"Pulling {source}")
    try:
        runner.run([runtime.path, "pull", str(destination), source], env=environment, cwd=str(build),
                   what=f"pulling the container {source}")
    except TykkyError as exc:
        raise TykkyError(f"Could not pull the container {source}. Check the reference and the "
                         "network, or give a local .sif file.", details=exc.details) from None
    return destination


def place(container: Path, source: str, destination: Path, config: Config) -> str:
    """Put the container into the installation tree; returns its name there."""
    if config.share_container and not is_remote(source) and container.is_file():
        os.symlink(os.path.realpath(container), destination)
    elif container.is_dir():
        raise TykkyError(f"{container} is a sandbox directory: build a .sif from it with "
                         f"`{'apptainer'} build image.sif {container}` and use that.")
    else:
        shutil.copyfile(container, destination)
    return destination.name
