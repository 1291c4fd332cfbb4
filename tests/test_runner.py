"""The one process runner."""
import sys

import pytest

from tykky import runner
from tykky.errors import TykkyError


def test_output_is_captured():
    completed = runner.run([sys.executable, "-c", "print('hello')"], what="printing")
    assert completed.output == "hello\n" and completed.returncode == 0


def test_failure_carries_the_tools_error_lines():
    script = "import sys; print('noise'); print('ERROR: No matching distribution for foo'); sys.exit(3)"
    with pytest.raises(TykkyError) as caught:
        runner.run([sys.executable, "-c", script], what="installing")
    assert "installing failed (exit code 3)" in caught.value.message
    assert "No matching distribution for foo" in caught.value.details
    assert "noise" not in caught.value.details


def test_missing_program_is_a_tykky_error():
    with pytest.raises(TykkyError, match="cannot run /no/such/program"):
        runner.run(["/no/such/program"], what="running")


def test_unchecked_failure_returns():
    assert runner.run([sys.executable, "-c", "raise SystemExit(4)"], what="x", check=False).returncode == 4


def test_uvs_explanation_of_an_unsatisfiable_requirement_is_kept():
    output = ("Using Python 3.11\nerror: No solution found when resolving dependencies:\n"
              "  `-> Because pyyyaml was not found in the package registry and you require pyyyaml, we can "
              "conclude that your requirements are unsatisfiable.\n")
    assert "not found in the package registry" in runner.error_lines(output)
