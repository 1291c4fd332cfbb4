"""Driving a real interactive shell (bash, sh, zsh) with pexpect, for the shell function tests."""
import re
import shutil
from pathlib import Path
from typing import Callable, List, Mapping, Tuple

import pexpect
import pytest

PROMPT = "tykky-test> "
# Written so that the echoed command line never contains the prompt or the markers itself.
_SET_PROMPT = "PS1='tykky''-test> '"
_VALUE = re.compile(r"=42=(.*?)=48=")

SHELLS = {"bash": ["bash", "--norc", "--noprofile", "-i"], "sh": ["sh", "-i"], "zsh": ["zsh", "-f", "-i"]}


class Shell:
    def __init__(self, name: str, env: Mapping[str, str], cwd: Path,
                 wrap: Callable[[List[str]], List[str]] = lambda argv: argv) -> None:
        """wrap: turns the shell's argv into the command that starts it (as another user)."""
        argv = SHELLS[name]
        if shutil.which(argv[0]) is None:
            pytest.skip(f"{argv[0]} is not installed (scripts/setup-host.sh installs it)")
        argv = wrap(list(argv))
        self.child = pexpect.spawn(argv[0], argv[1:], env=dict(env), cwd=str(cwd), encoding="utf-8",
                                   dimensions=(50, 2000), timeout=300)
        if name == "zsh":
            self.child.sendline("setopt no_prompt_sp no_prompt_cr; unsetopt zle")
        self.child.sendline(_SET_PROMPT)
        self.child.expect_exact(PROMPT)

    def run(self, command: str) -> str:
        """Output of command (with its echo), up to the next prompt."""
        self.child.sendline(command)
        self.child.expect_exact(PROMPT)
        return self.child.before.replace("\r", "")

    def value(self, expression: str) -> str:
        """The expansion of expression, e.g. "$PATH", in the shell (which may contain the prompt)."""
        self.child.sendline(f'echo "=$((6*7))={expression}=$((6*8))="')
        self.child.expect(_VALUE)
        value = self.child.match.group(1)
        self.child.expect_exact(PROMPT)
        return value

    def status(self, command: str) -> Tuple[str, int]:
        output = self.run(f"{command}; echo \"rc=$((0+$?))=\"")
        match = re.search(r"rc=(\d+)=", output)
        assert match, output
        return output, int(match.group(1))

    def close(self) -> None:
        self.child.sendline("exit")
        self.child.expect(pexpect.EOF)
