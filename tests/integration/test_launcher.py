"""The launcher's guarantees, on a real pip installation, as root and as the test user."""
import json
import os
import signal
import subprocess

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


def test_users_own_symlink_to_a_wrapper(pip_installation, who, user_dirs):
    link = user_dirs[who.name] / "my-python"
    if not link.is_symlink():
        os.symlink(pip_installation / "bin" / "python", link)
    completed = who.run([link, "-c", "import six, sys; print(sys.executable)"])
    assert completed.stdout.decode().strip() == str(link)


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
