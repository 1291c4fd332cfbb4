"""wrap-install end to end with real Apptainer, as root and as the test user.

The wrapped tree is made by the tests: a C program linked against a library in the tree
through an $ORIGIN/../lib rpath, a data directory, shell scripts that read data relative to
themselves (and, for --mask, by the tree's absolute path).
"""
import json
import os
import shutil
import signal
import subprocess
from functools import partial
from pathlib import Path

import pexpect
import pytest

from tests.helpers import exit_status, make_owned_dir, popen, spawn, tool
from tests.integration import conftest
from tests.integration.conftest import instances_of, owned_file, signal_when_ready, wait_for

pytestmark = pytest.mark.apptainer

HOSTILE_ARGUMENTS = [
    "", " ", "two words", "new\nline", "tab\there", "'single'", '"double"', "$HOME", "`id`", "$(id)", "*",
    "~", "back\\slash", "a;b", "--", "-c", "ünïcödé", "emoji 🚀", "%s %d", "!",
]
LIBRARY = 'const char *greeting(void) { return "greetings from libgreet"; }\n'
PROGRAM = r"""#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
const char *greeting(void);
static void handler(int number) { char text[32]; int n = snprintf(text, sizeof text, "got %d\n", number);
    write(1, text, n); _exit(40 + number); }
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "wait") == 0) {
        signal(SIGTERM, handler); signal(SIGINT, handler);
        puts("ready"); fflush(stdout);
        for (;;) pause();
    }
    printf("%s\n", greeting());
    return argc > 1 ? atoi(argv[1]) : 0;
}
"""
SCRIPTS = {
    "bin/show-data": '#!/bin/sh\ncat "$(dirname "$0")/../share/data/message.txt"\n',
    "bin/echo-args": '#!/bin/sh\nprintf "%s\\0" "$@"\n',
    "bin/is-tty": '#!/bin/sh\n[ -t 0 ] && echo "tty: yes" || echo "tty: no"\nread line\necho "read: $line"\n',
    "bin/show-env": '#!/bin/sh\necho "greeting=${TYKKY_TEST_GREETING:-}"\necho "ld=${LD_LIBRARY_PATH:-}"\n',
    "libexec/helper": '#!/bin/sh\necho "helper at $0"\n',
    "bin/abs-data": "#!/bin/sh\ncat {root}/share/data/message.txt\n",
}


def build_tree(root: Path, who) -> Path:  # type: ignore[no-untyped-def]
    """The installation to wrap, owned by `who`."""
    for folder in ("bin", "lib", "libexec", "share/data", "src"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "src" / "greet.c").write_text(LIBRARY)
    (root / "src" / "hello.c").write_text(PROGRAM)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", root / "lib" / "libgreet.so", root / "src" / "greet.c"],
                   check=True)
    subprocess.run(["gcc", "-o", root / "bin" / "hello", root / "src" / "hello.c", f"-L{root / 'lib'}", "-lgreet",
                    "-Wl,-rpath,$ORIGIN/../lib"], check=True)
    (root / "share" / "data" / "message.txt").write_text("data next to the script\n")
    for name, text in SCRIPTS.items():
        (root / name).write_text(text.replace("{root}", str(root)))
        (root / name).chmod(0o755)
    subprocess.run(["chown", "-R", f"{who.uid}:{who.gid}", root], check=True)
    return root


@pytest.fixture(scope="session")
def wrapped(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    """wrap-install with -w relative and absolute, -y, --environ and pre/post-install, once per user."""
    home = user_dirs[who.name]
    prefix = home / "wi-inst"
    if not prefix.exists():
        source = build_tree(home / "wi-source", who)
        inputs = make_owned_dir(home / "wi-inputs", who)
        # Without LD_LIBRARY_PATH the program finds its library only through its rpath.
        conf = owned_file(inputs / "conf.yaml", "add_ld: no\n", who)
        environ = owned_file(inputs / "environ.sh", "export TYKKY_TEST_GREETING='set by --environ'\n", who)
        pre = owned_file(inputs / "pre.sh", 'echo pre > "$TYKKY_INSTALLATION_PATH/pre.txt"\n', who)
        post = owned_file(inputs / "post.sh", 'ls "$TYKKY_INSTALLATION_PATH/bin" > '
                          '"$TYKKY_INSTALLATION_PATH/share/data/listing.txt"\n', who)
        who.run(tool(pyz, "wrap-install", "-w", f"bin,{source}/libexec/helper", "--prefix", str(prefix),
                     "-y", str(conf), "--environ", str(environ), "--pre-install", str(pre),
                     "--post-install", str(post), str(source)), cwd=home)
    return prefix


@pytest.fixture(scope="session")
def masked(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    """wrap-install --mask; the original tree is moved away afterwards, as users do."""
    home = user_dirs[who.name]
    prefix = home / "wi-masked"
    source = home / "wi-masked-source"
    if not prefix.exists():
        build_tree(source, who)
        who.run(tool(pyz, "wrap-install", "--mask", "-w", "bin", "--prefix", str(prefix), str(source)), cwd=home)
        who.run(["mv", source, home / "wi-masked-source.moved"])
    return prefix, source


def test_elf_program_finds_its_library_through_rpath(wrapped, who):
    completed = who.run([wrapped / "bin" / "hello"])
    assert completed.stdout == b"greetings from libgreet\n"
    environment = who.run([wrapped / "bin" / "show-env"]).stdout.decode().splitlines()
    assert "/TYKKY" not in environment[1]


def test_script_finds_data_relative_to_itself(wrapped, who):
    assert who.run([wrapped / "bin" / "show-data"]).stdout == b"data next to the script\n"


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_code_is_the_programs(wrapped, who, code):
    assert who.run([wrapped / "bin" / "hello", str(code)], check=False).returncode == code


def test_hostile_arguments_pass_byte_exact(wrapped, who):
    completed = who.run([wrapped / "bin" / "echo-args", *HOSTILE_ARGUMENTS])
    assert completed.stdout == b"".join(a.encode() + b"\0" for a in HOSTILE_ARGUMENTS)


def test_signal_reaches_the_program(wrapped, who, pyz):
    who.run([wrapped / "bin" / "hello"])
    assert wait_for(lambda: instances_of(who, pyz, wrapped) == 1)
    process = popen(who, [wrapped / "bin" / "hello", "wait"], stdout=subprocess.PIPE)
    output = signal_when_ready(process, signal.SIGINT)
    assert output == f"got {int(signal.SIGINT)}\n".encode()
    assert process.returncode == 40 + signal.SIGINT



def test_terminal_reaches_the_program(wrapped, who):
    child = spawn(who, [wrapped / "bin" / "is-tty"])
    child.expect("tty: yes")
    child.sendline("typed line")
    child.expect("read: typed line")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_absolute_wrapper_path_inside_the_tree(wrapped, who):
    assert os.readlink(wrapped / "_bin" / "helper") == "/TYKKY/libexec/helper"
    assert who.run([wrapped / "bin" / "helper"]).stdout == b"helper at /TYKKY/libexec/helper\n"


def test_users_own_symlink_to_a_wrapper(wrapped, who, user_dirs):
    link = user_dirs[who.name] / "my-show-data"
    if not link.is_symlink():
        os.symlink(wrapped / "bin" / "show-data", link)
    assert who.run([link]).stdout == b"data next to the script\n"


def test_environ_file_and_install_hooks(wrapped, who):
    environment = who.run([wrapped / "bin" / "show-env"]).stdout.decode().splitlines()
    assert environment[0] == "greeting=set by --environ"
    listing = who.run([wrapped / "bin" / "_debug_exec", "cat", "/TYKKY/pre.txt", "/TYKKY/share/data/listing.txt"])
    assert listing.stdout.decode().split() == ["pre", "abs-data", "echo-args", "hello", "is-tty", "show-data",
                                               "show-env"]
    history = wrapped / "share" / "tykky" / "history" / "0001-new"
    assert sorted(os.listdir(history)) == ["command.json", "environ.sh", "post-install.sh", "pre-install.sh"]


def test_debug_exec_and_shell_run_inside(wrapped, who):
    completed = who.run([wrapped / "bin" / "_debug_exec", "ls", "/TYKKY"])
    assert completed.stdout.decode().split() == ["bin", "lib", "libexec", "pre.txt", "share", "src"]
    child = spawn(who, [wrapped / "bin" / "_debug_shell", "--norc", "--noprofile"])
    child.sendline("echo inside:$(cat /TYKKY/share/data/message.txt)")
    child.expect("inside:data next to the script")
    assert exit_status(child, "exit 5") == 5


def test_manifest_of_a_wrapped_tree(wrapped):
    manifest = json.loads((wrapped / "_tykky" / "manifest.json").read_text())
    assert manifest["mode"] == "wrap-install"
    assert manifest["path"]["prepend"] == ["/TYKKY/bin", "/TYKKY/libexec"]
    assert manifest["ld_library_path"]["prepend"] == []  # add_ld: no from -y
    assert set(manifest["direct_targets"]) == set(manifest["targets"])


def test_masked_tree_works_at_its_own_path_after_the_original_is_gone(masked, who):
    prefix, source = masked
    assert who.run([prefix / "bin" / "abs-data"]).stdout == b"data next to the script\n"
    assert who.run([prefix / "bin" / "show-data"]).stdout == b"data next to the script\n"
    assert who.run([prefix / "bin" / "hello", "7"], check=False).returncode == 7
    assert not source.exists()  # the runtime did not recreate the path on the host


def test_mask_help_explains_the_cost(pyz, who):
    completed = who.run(tool(pyz, "wrap-install", "--help"))
    assert b"top-level directory" in b" ".join(completed.stdout.split())  # argparse wraps the lines


failed_build = partial(conftest.failed_build, "wrap-install")


def test_missing_directory_is_an_error(who, pyz, user_dirs):
    stderr = failed_build(who, pyz, user_dirs[who.name], "wi-nodir", "-w", "bin", "/no/such/installation")
    assert "/no/such/installation" in stderr and "does not exist" in stderr


def test_wrapper_path_leaving_the_tree_is_an_error(who, pyz, user_dirs, wrapped):
    source = user_dirs[who.name] / "wi-source"
    stderr = failed_build(who, pyz, user_dirs[who.name], "wi-escape", "-w", "../bin", str(source))
    assert "../bin" in stderr and "leads out of" in stderr


def test_missing_wrapper_path_is_an_error(who, pyz, user_dirs, wrapped):
    source = user_dirs[who.name] / "wi-source"
    stderr = failed_build(who, pyz, user_dirs[who.name], "wi-nopath", "-w", "bin,no-such-dir", str(source))
    assert "/TYKKY/no-such-dir" in stderr and "do not exist in the container" in stderr


def test_update_runs_commands_over_the_layers_and_wraps_what_they_add(who, pyz, user_dirs):
    home = user_dirs[who.name]
    prefix, source = home / "wi-updated", home / "wi-updated-source"
    build_tree(source, who)
    # DIR before the options: nothing of how the installation was made may be read off argv's end.
    who.run(tool(pyz, "wrap-install", "-w", f"bin,{source}/libexec/helper", str(source), "--prefix", str(prefix)),
            cwd=home)
    shutil.rmtree(source)  # an update needs nothing of DIR
    inputs = make_owned_dir(home / "wi-update-inputs", who)
    later = "$TYKKY_INSTALLATION_PATH/bin/later"
    post = owned_file(inputs / "post.sh", f'printf "#!/bin/sh\\necho added later\\n" > "{later}"\nchmod +x "{later}"\n',
                      who)
    who.run(tool(pyz, "pip-containerize", "update", str(prefix), "--post-install", str(post)), cwd=home)
    assert len(json.loads((prefix / "_tykky" / "manifest.json").read_text())["layers"]) == 2
    assert who.run([prefix / "bin" / "later"]).stdout == b"added later\n"
    assert who.run([prefix / "bin" / "hello"]).stdout == b"greetings from libgreet\n"
    assert who.run([prefix / "bin" / "helper"]).stdout.startswith(b"helper at ")
    requirements = owned_file(inputs / "req.txt", "six\n", who)
    refused = who.run(tool(pyz, "pip-containerize", "update", str(prefix), "-r", str(requirements)), cwd=home,
                      check=False)
    assert refused.returncode != 0 and b"made by wrap-install" in refused.stderr and b"Traceback" not in refused.stderr
    refused = who.run(tool(pyz, "conda-containerize", "update", str(prefix), "--post-install", str(post)),
                      cwd=home, check=False)
    assert refused.returncode != 0 and b"pip-containerize update DIR" in refused.stderr
    assert who.run([prefix / "bin" / "later"]).stdout == b"added later\n"
