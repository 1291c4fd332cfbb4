"""The checks of user files made before a build (tykky.inputs)."""
import pytest

from tykky import inputs
from tykky.errors import TykkyError


@pytest.mark.parametrize("content, words", [
    (None, "does not exist"),
    (b"six\0\1\2", "not a text file"),
    (b"caf\xe9\n", "not a text file in UTF-8"),
])
def test_unusable_files_are_named(tmp_path, content, words):
    path = tmp_path / "requirements.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TykkyError, match=words):
        inputs.read_text_file(str(path), "requirements file")


def test_a_directory_is_named_as_one(tmp_path):
    with pytest.raises(TykkyError, match="is a directory"):
        inputs.read_text_file(str(tmp_path), "requirements file")


def test_text_is_returned(tmp_path):
    (tmp_path / "r.txt").write_text("numpy  # ü\n")
    assert inputs.read_text_file(str(tmp_path / "r.txt"), "requirements file") == "numpy  # ü\n"


@pytest.mark.parametrize("text, listed", [("", False), ("# only\n\n   \n", False), ("six # pinned\n", True),
                                          ("-r other.txt\n", True)])
def test_requirements_are_lines_besides_comments(text, listed):
    assert inputs.has_requirements(text) is listed


def test_shell_syntax_errors_are_refused_and_bash_syntax_warned(tmp_path, caplog):
    broken = tmp_path / "broken.sh"
    broken.write_text('export A="unterminated\n')
    with pytest.raises(TykkyError, match="syntax error"):
        inputs.check_shell_syntax(str(broken), "environment file")
    bash_only = tmp_path / "bash.sh"
    bash_only.write_text("values=(1 2)\nexport B=x\n")
    inputs.check_shell_syntax(str(bash_only), "environment file")  # a warning, not an error
