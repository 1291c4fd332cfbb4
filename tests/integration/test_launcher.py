"""The launcher's guarantees, on a real pip installation, as root and as the test user."""
import json
import os
import signal
import subprocess
from pathlib import Path

import pexpect
import pytest

from tests.helpers import exit_status, popen, spawn
from tests.integration.conftest import WAIT_FOR_SIGNAL, signal_when_ready, warm_up

pytestmark = pytest.mark.apptainer

HOSTILE_ARGUMENTS = [
    "", " ", "two words", "  leading and trailing  ", "new\nline", "tab\there", "'single'", '"double"',
    "$HOME", "${PATH}", "`id`", "$(id)", "*", "?", "[a-z]*", "~", "back\\slash", "\\", "a;b", "a|b",
    "a&&b", ">out", "<in", "#comment", "--", "-c", "--prefix=x", "ünïcödé", "emoji 🚀", "%s %d", "!",
]
ECHO_ARGV = "import sys, json; sys.stdout.write(json.dumps(sys.argv[1:]))"


def test_reference_quoting_round_trip(pip_installation, who):
    completed = who.run([pip_installation / "bin" / "python", "-c", "print('Hello world --a g -b \\\\ ')"])
    assert completed.stdout == b"Hello world --a g -b \\ \n"


def test_hostile_arguments_pass_byte_exact(pip_installation, who):
    completed = who.run([pip_installation / "bin" / "python", "-c", ECHO_ARGV, *HOSTILE_ARGUMENTS])
    assert json.loads(completed.stdout) == HOSTILE_ARGUMENTS


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_code_is_the_programs(pip_installation, who, code):
    completed = who.run([pip_installation / "bin" / "python", "-c", f"import sys; sys.exit({code})"], check=False)
    assert completed.returncode == code


def test_killed_program_reports_signal_exit(pip_installation, who):
    program = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    completed = who.run([pip_installation / "bin" / "python", "-c", program], check=False)
    assert completed.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1])
def test_signal_to_wrapper_pid_reaches_program(pip_installation, who, pyz, number):
    warm_up(who, pyz, pip_installation)
    process = popen(who, [pip_installation / "bin" / "python", "-c", WAIT_FOR_SIGNAL],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = signal_when_ready(process, number)
    assert output == f"got {int(number)}\n".encode()
    assert process.returncode == 40 + number


def test_binary_stdin_to_stdout(pip_installation, who):
    payload = bytes(range(256)) * 2000 + os.urandom(100000)
    program = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"
    completed = who.run([pip_installation / "bin" / "python", "-c", program], input=payload)
    assert completed.stdout == payload[::-1]


def test_sys_executable_is_the_wrapper(pip_installation, who):
    completed = who.run([pip_installation / "bin" / "python", "-c", "import sys; print(sys.executable)"])
    assert completed.stdout.decode().strip() == str(pip_installation / "bin" / "python")


def test_installed_packages_are_importable(pip_installation, who):
    program = "import six, yaml; print(six.__version__, yaml.__version__, six.__file__)"
    completed = who.run([pip_installation / "bin" / "python", "-c", program])
    version_six, version_yaml, location = completed.stdout.decode().split()
    assert (version_six, version_yaml) == ("1.16.0", "6.0.2")
    assert location.startswith(str(pip_installation / "lib"))


def test_user_site_packages_do_not_leak_in(pip_installation, who, user_dirs):
    home = user_dirs[who.name]
    completed = who.run([pip_installation / "bin" / "python", "-c", "import site, sys; print(site.ENABLE_USER_SITE)"],
                        env={"HOME": str(home)})
    assert completed.stdout.decode().strip() == "False"


# tabulate is in the installation only: the machine's base Pythons have six and PyYAML too.
SHOW_INSTALLATION = "import sys, tabulate; print(sys.prefix); print(tabulate.__file__)"


def links_to(who, directory: Path, links: dict) -> Path:  # type: ignore[no-untyped-def]
    """A user's own links (name -> target) in a fresh directory of theirs; the first one."""
    who.run(["rm", "-rf", directory])
    who.run(["mkdir", "-p", directory])
    for name, target in links.items():
        who.run(["ln", "-s", target, directory / name])
    return directory / next(iter(links))


@pytest.mark.parametrize("warm", ["0", "1"])
@pytest.mark.parametrize("kind", ["link", "link to a link", "relative link", "link to the bin directory"])
def test_users_own_link_to_a_wrapper_runs_the_installation(pip_installation, who, user_dirs, pyz, kind, warm):
    if warm == "1":
        warm_up(who, pyz, pip_installation)
    directory = user_dirs[who.name] / "my-links"
    relative = os.path.relpath(pip_installation / "bin" / "python", directory)
    link = links_to(who, directory, {
        "link": {"mypython": pip_installation / "bin" / "python"},
        "link to a link": {"py": "mypython", "mypython": pip_installation / "bin" / "python"},
        "relative link": {"mypython": relative},
        "link to the bin directory": {"bin": pip_installation / "bin"},
    }[kind])
    if kind == "link to the bin directory":
        link = link / "python"
    completed = who.run([link, "-c", SHOW_INSTALLATION], env={"TYKKY_WARM_MOUNTS": warm})
    prefix, location = completed.stdout.decode().split()
    assert prefix == str(pip_installation)
    assert location.startswith(str(pip_installation / "lib"))


def test_a_moved_link_to_a_wrapper_runs_the_installation(pip_installation, who, user_dirs):
    link = links_to(who, user_dirs[who.name] / "my-links", {"mypython": pip_installation / "bin" / "python"})
    who.run(["mkdir", "-p", link.parent / "elsewhere"])
    who.run(["mv", link, link.parent / "elsewhere" / "moved"])
    completed = who.run([link.parent / "elsewhere" / "moved", "-c", SHOW_INSTALLATION])
    assert completed.stdout.decode().split()[0] == str(pip_installation)


@pytest.mark.parametrize("warm", ["0", "1"])
def test_users_own_link_to_a_venv_on_top_runs_the_venv(pip_installation, who, user_dirs, pyz, warm):
    if warm == "1":
        warm_up(who, pyz, pip_installation)
    venv = user_dirs[who.name] / "linked-venv"
    if not venv.exists():
        who.run([pip_installation / "bin" / "python", "-m", "venv", venv])
        who.run([venv / "bin" / "pip", "install", "--no-deps", "tomli==2.0.1"], cwd=user_dirs[who.name])
    link = links_to(who, user_dirs[who.name] / "my-venv-links", {"vpy": venv / "bin" / "python"})
    program = "import sys, tomli; print(sys.prefix); print(tomli.__file__); print(sys.executable)"
    for python in (venv / "bin" / "python", link):
        lines = who.run([python, "-c", program], env={"TYKKY_WARM_MOUNTS": warm}).stdout.decode().split()
        assert lines[0] == str(venv)
        assert lines[1].startswith(str(venv / "lib"))
        assert lines[2] == str(venv / "bin" / "python")


@pytest.mark.parametrize("damage, problem", [
    (["truncate", "-s", "100", "_tykky/manifest.json"], "is not valid JSON"),
    (["rm", "img.sqfs"], "img.sqfs is missing"),
    (["chmod", "0", "_tykky/manifest.json"], "cannot be read (Permission denied)"),
])
def test_a_damaged_installation_gives_one_line(pip_installation, who, user_dirs, damage, problem):
    if who.is_root and damage[0] == "chmod":
        pytest.skip("root reads every file")
    copy = user_dirs[who.name] / "damaged-inst"
    who.run(["rm", "-rf", copy])
    who.run(["cp", "-a", pip_installation, copy])
    who.run(damage, cwd=copy)
    completed = who.run([copy / "bin" / "python", "-c", "pass"], check=False)
    errors = completed.stderr.decode()
    assert completed.returncode != 0
    assert "Traceback" not in errors and len(errors.splitlines()) == 1, errors
    assert errors.startswith(f"tykky: the installation at {copy} is damaged: ") and problem in errors
    who.run(["chmod", "-R", "u+rwX", copy])
    who.run(["rm", "-rf", copy])


def test_leaked_runtime_variables_do_not_break_wrappers(pip_installation, who):
    leaked = {"APPTAINER_BIND": "/nonexistent-source:/x", "APPTAINERENV_PATH": "/nowhere",
              "SINGULARITY_BIND": "/nonexistent-source:/y", "SINGULARITYENV_PATH": "/nowhere",
              "APPTAINER_CONTAINER": "/some/other.sif", "APPTAINER_NAME": "other.sif"}
    completed = who.run([pip_installation / "bin" / "python", "-c", "import six, os; print(os.environ['PATH'])"],
                        env=leaked)
    assert completed.stdout.decode().split(":")[0] == str(pip_installation / "bin")


def test_debug_exec_runs_a_command_inside(pip_installation, who):
    completed = who.run([pip_installation / "bin" / "_debug_exec", "ls", "/TYKKY"])
    assert completed.stdout.decode().split() == ["venv"]


def test_wrappers_call_each_other_inside_without_the_launcher(pip_installation, who):
    program = "import subprocess; print(subprocess.check_output(['pip', '--version']).decode())"
    completed = who.run([pip_installation / "bin" / "python", "-c", program])
    assert "/TYKKY/venv/lib/python3" in completed.stdout.decode()


def test_wrapper_inside_a_foreign_container_fails_clearly(pip_installation, who):
    from tests.helpers import BASE_IMAGE

    command = ["apptainer", "-q", "exec", BASE_IMAGE, str(pip_installation / "_tykky" / "launcher"), "-c", "pass"]
    completed = who.run(command, check=False)
    assert completed.returncode != 0
    assert b"inside another container" in completed.stderr



def test_interactive_python_repl(pip_installation, who):
    child = spawn(who, [pip_installation / "bin" / "python", "-q"])
    child.expect(">>> ")
    child.sendline("import sys, six; print(6 * 7, sys.stdin.isatty())")
    child.expect("42 True")
    assert exit_status(child, "raise SystemExit(5)") == 5


def test_ctrl_c_in_repl_interrupts_not_kills(pip_installation, who):
    child = spawn(who, [pip_installation / "bin" / "python", "-q"])
    child.expect(">>> ")
    # The marker is built at run time so that the echo of the typed line cannot match it.
    child.sendline("import time; print('sle' + 'eping', flush=True); [time.sleep(0.05) for _ in range(1200)]")
    child.expect("sleeping")
    child.sendintr()
    child.expect("KeyboardInterrupt")
    child.expect(">>> ")
    child.sendeof()
    child.expect(pexpect.EOF)


def test_debug_shell_is_interactive_inside(pip_installation, who):
    child = spawn(who, [pip_installation / "bin" / "_debug_shell", "--norc", "--noprofile"])
    child.sendline("echo inside:$(ls /TYKKY)")
    child.expect("inside:venv")
    assert exit_status(child, "exit 3") == 3


@pytest.mark.parametrize("warm", ["1", "0"])
def test_programs_start_with_default_sigpipe(pip_installation, who, warm):
    """The launcher is Python, which ignores SIGPIPE; an exec would pass that on to the program."""
    completed = who.run([pip_installation / "bin" / "_debug_exec", "sh", "-c", "grep SigIgn /proc/$$/status"],
                        env={"TYKKY_WARM_MOUNTS": warm})
    ignored = int(completed.stdout.decode().split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
