"""Getting the container image a build runs in and an installation ships."""
import os
import shutil
import struct
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
        if path.is_file():
            check_image_file(path, f"The container {source}", "Give a .sif file, or a docker:// reference.")
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


SIF_MAGIC = b"SIF_MAGIC"
SQUASHFS_MAGIC = b"hsqs"
EXT_MAGIC = b"\x53\xef"


def image_problem(path: Path) -> str:
    """Why the file at path is not a usable container image or squashfs layer, or "".

    A SIF records where its data ends, a squashfs image how many bytes it uses: a file shorter
    than that was cut off (a copy that ran out of space, an interrupted transfer)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1088)
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if head[32:41] == SIF_MAGIC and len(head) >= 128:
        data_offset, data_size = struct.unpack("<2q", head[112:128])
        end = data_offset + data_size
    elif head[:4] == SQUASHFS_MAGIC and len(head) >= 48:
        end = struct.unpack("<q", head[40:48])[0]
    elif head[1080:1082] == EXT_MAGIC:
        return ""
    else:
        return "is not a container image (not a SIF, squashfs or ext3 file)"
    return f"is truncated ({size} of {end} bytes)" if size < end else ""


def check_image_file(path: Path, what: str, advice: str) -> None:
    problem = image_problem(path)
    if problem:
        raise TykkyError(f"{what} {problem}. {advice}")


def check_buildable(source: str) -> None:
    """Image-based installations ship their container as a file: refuse a directory before building."""
    if source and not is_remote(source) and Path(source).expanduser().is_dir():
        raise TykkyError(f"The container {source} is a directory: an installation ships its container "
                         f"as a file. Build a .sif from it (`apptainer build image.sif {source}`) and use that.")


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
