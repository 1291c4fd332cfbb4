"""Checks of the files a user names (requirements, environment files), made before a build
starts, so that a mistake in them costs no build and gets a message saying what is wrong."""
import os

from tykky import log, runner
from tykky.errors import TykkyError


def read_text_file(path: str, label: str) -> str:
    """The text of a file the user named; an error naming the file unless it is readable text."""
    if os.path.isdir(path):
        raise TykkyError(f"The {label} {path} is a directory. Give the path of a file.")
    if not os.path.exists(path):
        raise TykkyError(f"The {label} {path} does not exist. Check the path.")
    try:
        with open(path, "rb") as handle:
            content = handle.read()
    except OSError as exc:
        raise TykkyError(f"Cannot read the {label} {path}: {exc.strerror}. Check its permissions.") from None
    if b"\0" in content:
        raise TykkyError(f"The {label} {path} is not a text file (it holds binary data). "
                         "Give the text file you meant.")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TykkyError(f"The {label} {path} is not a text file in UTF-8 (byte {exc.start} is not UTF-8). "
                         "Save it as UTF-8, or give the text file you meant.") from None


def has_requirements(text: str) -> bool:
    """Whether a requirements file names anything: lines other than blanks and comments."""
    return any(line.split("#", 1)[0].strip() for line in text.splitlines())


def check_shell_syntax(path: str, label: str) -> None:
    """A file sourced by /bin/sh at every launch must parse, or every launch would fail."""
    completed = runner.run(["/bin/sh", "-n", path], what=f"checking the {label}", check=False, echo=False)
    if completed.returncode != 0 and os.access("/bin/bash", os.X_OK):
        # The container's /bin/sh may be bash where the host's is not: bash syntax may work there.
        if runner.run(["/bin/bash", "-n", path], what=f"checking the {label}", check=False, echo=False).returncode == 0:
            log.warning(f"The {label} {path} uses syntax that only some /bin/sh accept (bash's): "
                        f"{completed.output.strip()}. Launches fail where the container's /bin/sh is not bash.")
            return
    if completed.returncode != 0:
        reason = completed.output.strip()
        raise TykkyError(f"The {label} {path} has a shell syntax error: {reason}. Fix the file: it is "
                         "sourced by /bin/sh before every launch.")
