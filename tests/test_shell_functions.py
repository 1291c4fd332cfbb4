"""shell/tykky.sh in real interactive bash, sh and zsh: activate, deactivate, lookup, prompt."""
import shlex
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.shells import Shell

FUNCTIONS = REPO / "shell" / "tykky.sh"
START_PATH = "/usr/local/bin:/usr/bin:/opt/with space/bin:/bin"


def installation(prefix: Path, greeting: str) -> Path:
    (prefix / "_tykky").mkdir(parents=True)
    (prefix / "_tykky" / "manifest.json").write_text("{}")
    (prefix / "bin").mkdir()
    hello = prefix / "bin" / "hello-tykky"
    hello.write_text(f"#!/bin/sh\necho 'hello from {greeting}'\n")
    hello.chmod(0o755)
    return prefix


@pytest.fixture(params=["bash", "sh", "zsh"])
def shell(request, tmp_path):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    work = tmp_path / "work dir"
    home.mkdir()
    work.mkdir()
    env = {"HOME": str(home), "PATH": START_PATH, "TERM": "dumb", "LANG": "C.UTF-8",
           "TYKKY_PATH": f"{tmp_path / 'store one'}:{tmp_path / 'store two'}"}
    running = Shell(request.param, env, work)
    running.run(f". {shlex.quote(str(FUNCTIONS))}")
    yield running
    running.close()


def test_activate_by_name_then_deactivate_restores_path_and_prompt(shell, tmp_path):
    prefix = installation(tmp_path / "store two" / "my env", "my env")
    prompt = shell.value("$PS1")
    assert shell.status("tykky activate 'my env'")[1] == 0
    assert shell.value("$PATH") == f"{prefix}/bin:{START_PATH}"
    assert shell.value("$TYKKY_PREFIX") == str(prefix)
    assert shell.value("$PS1") == f"(my env) {prompt}"
    assert "hello from my env" in shell.run("hello-tykky")
    assert shell.status("tykky deactivate")[1] == 0
    assert shell.value("$PATH") == START_PATH
    assert shell.value("$PS1") == prompt
    assert shell.value("${TYKKY_PREFIX-unset}") == "unset"


def test_deactivate_removes_only_its_own_entry(shell, tmp_path):
    prefix = installation(tmp_path / "store one" / "tool", "tool")
    before = f"{prefix}/bin:/usr/bin::/opt/with space/bin:{prefix}/bin"
    shell.run(f"PATH={shlex.quote(before)}")
    shell.run("tykky activate tool")
    assert shell.value("$PATH") == f"{prefix}/bin:{before}"
    shell.run("tykky deactivate")
    assert shell.value("$PATH") == before


def test_path_argument_and_switching_installations(shell, tmp_path):
    first = installation(tmp_path / "elsewhere" / "first one", "first")
    second = installation(tmp_path / "store one" / "second", "second")
    shell.run(f"tykky activate {shlex.quote(str(first))}")
    shell.run("tykky activate second")
    assert shell.value("$PATH") == f"{second}/bin:{START_PATH}"
    assert shell.value("$PS1").startswith("(second) tykky-test>")
    assert "hello from second" in shell.run("hello-tykky")


def test_current_directory_wins_an_ambiguous_name_with_a_warning(shell, tmp_path):
    installation(tmp_path / "store one" / "dup", "store")
    local = installation(tmp_path / "work dir" / "dup", "local")
    output, status = shell.status("tykky activate dup")
    assert status == 0
    assert "WARNING: 'dup' is both" in output and "activating the one in the current directory" in output
    assert shell.value("$TYKKY_PREFIX") == str(local)


def test_default_search_path_is_home_dot_tykky(shell, tmp_path):
    prefix = installation(tmp_path / "home" / ".tykky" / "dflt", "default")
    shell.run("unset TYKKY_PATH")
    assert shell.status("tykky activate dflt")[1] == 0
    assert shell.value("$TYKKY_PREFIX") == str(prefix)


def test_prompt_is_kept_when_asked(shell, tmp_path):
    installation(tmp_path / "store one" / "quiet", "quiet")
    prompt = shell.value("$PS1")
    shell.run("TYKKY_CHANGE_PS1=0 && export TYKKY_CHANGE_PS1")
    shell.run("tykky activate quiet")
    assert shell.value("$PS1") == prompt


def test_not_an_installation_is_refused_and_nothing_changes(shell, tmp_path):
    (tmp_path / "work dir" / "plain").mkdir()
    output, status = shell.status("tykky activate plain")
    assert status == 1
    assert "no tykky installation named 'plain' in TYKKY_PATH" in output
    output, status = shell.status("tykky activate ./plain")
    assert status == 1 and "./plain is not a tykky installation" in output
    assert shell.value("$PATH") == START_PATH
    assert shell.value("${TYKKY_PREFIX-unset}") == "unset"
    output, status = shell.status("tykky deactivate")
    assert status == 1 and "no installation is active" in output


def test_other_commands_go_to_the_program(shell, tmp_path):
    program = tmp_path / "fake tykky"
    program.write_text('#!/bin/sh\necho "program got $*"\n')
    program.chmod(0o755)
    shell.run(f"_tykky_program={shlex.quote(str(program))}")
    assert "program got info --x" in shell.run("tykky info --x")
