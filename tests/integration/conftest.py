"""Installations built once per session, as root and as the test user."""
import os
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, make_owned_dir, tool


@pytest.fixture(scope="session")
def pip_installation(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    """A pip installation of tests/data/requirements.txt owned by `who`, built once."""
    home = user_dirs[who.name]
    prefix = home / "pip-inst"
    if not prefix.exists():
        requirements = make_owned_dir(home / "inputs", who) / "requirements.txt"
        requirements.write_text((REPO / "tests" / "data" / "requirements.txt").read_text())
        requirements.chmod(0o644)
        who.run(tool(pyz, "pip-containerize", "new", "--prefix", str(prefix), str(requirements)), cwd=home)
    return prefix


def owned_file(path: Path, text: str, who) -> Path:  # type: ignore[no-untyped-def]
    path.write_text(text)
    os.chown(path, who.uid, who.gid)
    return path


def site_config(who, home: Path, name: str, **defaults) -> Path:  # type: ignore[no-untyped-def]
    """The test machine's site configuration with some defaults changed, owned by who."""
    settings = yaml.safe_load((REPO / "configs" / "debian-test.yaml").read_text())
    settings["defaults"].update(defaults)
    return owned_file(home / name, yaml.safe_dump(settings), who)


def build_pip(who, pyz, home: Path, name: str, requirements: str, *extra: str, check: bool = True,
              env=None):  # type: ignore[no-untyped-def]
    """pip-containerize new of requirements into home/name, as who."""
    inputs = make_owned_dir(home / f"inputs-{name}", who)
    owned_file(inputs / "requirements.txt", requirements, who)
    return who.run(tool(pyz, "pip-containerize", "new", "--prefix", str(home / name), *extra,
                        str(inputs / "requirements.txt")), cwd=home, check=check, env=env)


# The conda installations, shared by the conda test modules (built once per session and user).
from tests.integration.conda_fixtures import (  # noqa: E402,F401
    conda_channel,
    conda_installation,
    mamba_installation,
    updatable_conda,
)

# The vendor-like image and the fake GPU driver (tests/integration/test_gpu_containers.py).
from tests.integration.image_fixtures import fake_gpu_driver, vendor_image  # noqa: E402,F401


def wait_for(condition, limit: float = 90.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll a condition; the limit only bounds a hang, it is not what a test measures."""
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def instances_of(who, pyz, prefix: Path) -> int:  # type: ignore[no-untyped-def]
    return who.run(tool(pyz, "warm", "status", str(prefix))).stdout.decode().count(str(prefix))


def warm_up(who, pyz, prefix: Path, program: str = "python") -> None:  # type: ignore[no-untyped-def]
    """The launch that finds no instance runs cold and starts one in the background: wait for it."""
    who.run([prefix / "bin" / program, "-c", "pass"])
    assert wait_for(lambda: instances_of(who, pyz, prefix) == 1)


WAIT_FOR_SIGNAL = """
import os, signal, sys, time
def handler(number, frame):
    # os.write: the signal may land while the buffered "ready" write is still returning.
    os.write(1, b"got %d\\n" % number); sys.exit(40 + number)
for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"):
    signal.signal(getattr(signal, name), handler)
sys.stdout.write("ready\\n"); sys.stdout.flush()
# Short sleeps: a handler that runs just before a long sleep starts would wait for its end.
for _ in range(2400):
    time.sleep(0.05)
sys.exit(99)
"""


def signal_when_ready(process, number: int, ready: bytes = b"ready\n") -> bytes:  # type: ignore[no-untyped-def]
    """Wait for the program's ready line, send it `number`, return what it writes until it ends.

    A program that does not end is killed, so that a failing test leaves nothing running."""
    try:
        assert process.stdout.readline() == ready
        process.send_signal(number)
        return process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()


def failed_build(command: str, who, pyz, home: Path, name: str, *arguments: str,
                 env=None) -> str:  # type: ignore[no-untyped-def]
    """`command --prefix home/name arguments` must fail cleanly; returns its stderr.

    Cleanly: an error exit without a traceback, no prefix, and nothing left in the working
    directory (no build directory, no runtime cache)."""
    workdir = make_owned_dir(home / f"{name}-cwd", who)
    completed = who.run(tool(pyz, *command.split(), "--prefix", str(home / name), *arguments), cwd=workdir,
                        check=False, env={"CW_BUILD_TMPDIR": str(workdir), **(env or {})})
    stderr = completed.stderr.decode()
    assert completed.returncode != 0
    assert "Traceback" not in stderr
    assert not (home / name).exists()
    assert os.listdir(workdir) == []
    return stderr
