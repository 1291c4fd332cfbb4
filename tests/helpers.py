"""Running the built tool and its installations as root or as the unprivileged test user."""
import os
import pwd
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import pexpect

REPO = Path(__file__).resolve().parents[1]
TEST_USER = os.environ.get("TYKKY_TEST_USER", "tykkytest")
BASE_IMAGE = os.environ.get("TYKKY_BASE_IMAGE", "/opt/tykky-ci/images/base.sif")
SYSTEM_PYTHON = "/usr/bin/python3"
# The oldest Python the tool runs on, where both users can run it (scripts/setup-host.sh).
PYTHON36 = os.environ.get("TYKKY_PYTHON36", "/opt/tykky-ci/python3.6/bin/python3.6")
# The host's CA and pip settings: package indexes are reached through TLS interception.
PASSED_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                    "PIP_DEFAULT_TIMEOUT", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_FIND_LINKS",
                    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "http_proxy", "https_proxy", "no_proxy",
                    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "LANG")


@dataclass(frozen=True)
class User:
    """Who runs a command: root, or the test user through runuser."""

    name: str
    home: str
    uid: int
    gid: int

    @property
    def is_root(self) -> bool:
        return self.uid == 0

    def environment(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        env = {key: os.environ[key] for key in PASSED_VARIABLES if key in os.environ}
        env.update({"HOME": self.home, "USER": self.name, "LOGNAME": self.name,
                    "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                    "CW_GLOBAL_YAML": "debian-test", "TMPDIR": "/tmp"})
        env.update(extra or {})
        return env

    def command(self, argv: Sequence[str], env: Mapping[str, str]) -> list:
        """argv wrapped so that it runs as this user with exactly env."""
        # setpriv execs (runuser forks): a signal sent to the returned pid reaches the program.
        prefix = [] if self.is_root else ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}",
                                          "--init-groups"]
        return prefix + ["env", "-i"] + [f"{k}={v}" for k, v in env.items()] + [str(a) for a in argv]

    def run(self, argv: Sequence[str], *, env: Optional[Mapping[str, str]] = None, cwd: Optional[Path] = None,
            input: Optional[bytes] = None, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        completed = subprocess.run(self.command(argv, self.environment(env)), cwd=cwd, input=input,
                                   capture_output=True, timeout=timeout)
        if check and completed.returncode != 0:
            raise AssertionError(f"{argv} failed with {completed.returncode}:\n"
                                 f"stdout: {completed.stdout.decode(errors='replace')}\n"
                                 f"stderr: {completed.stderr.decode(errors='replace')}")
        return completed


def user_named(name: str) -> User:
    entry = pwd.getpwnam(name)
    return User(entry.pw_name, entry.pw_dir, entry.pw_uid, entry.pw_gid)


ROOT = User("root", "/root", 0, 0)


def make_owned_dir(path: Path, user: User) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, user.uid, -1)
    path.chmod(0o755)
    return path


def default_signals() -> None:
    """Child processes start with default signal handling even when the test run itself was
    started in the background by a non-interactive shell, which ignores SIGINT and SIGQUIT."""
    for number in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(number, signal.SIG_DFL)


def popen(user: User, argv: Sequence[str], env: Optional[Mapping[str, str]] = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(user.command(argv, user.environment(env)), preexec_fn=default_signals, **kwargs)


def spawn(user: User, argv: Sequence[str], env: Optional[Mapping[str, str]] = None, **kwargs) -> pexpect.spawn:
    """argv on a real terminal (pexpect), as user."""
    command = user.command(argv, user.environment({"TERM": "dumb", "PS1": "tykky-test$ ", **(env or {})}))
    return pexpect.spawn(command[0], [str(a) for a in command[1:]], timeout=60, preexec_fn=default_signals, **kwargs)


def exit_status(child: pexpect.spawn, last_line: str) -> int:
    """Type the line that ends the spawned program, wait for its end; its exit status."""
    child.sendline(last_line)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def tool(pyz: Path, *command: str) -> list:
    return [SYSTEM_PYTHON, str(pyz), *command]


# The runtime as a manifest records it (tests that write manifests without building).
RECORDED_RUNTIME = {"name": "apptainer", "path": "/usr/bin/apptainer", "version": "1.4.5"}
