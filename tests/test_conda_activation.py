"""Activation computed from environment dumps, and the env file's variables as shell exports."""
import subprocess

from tykky.conda_activation import (
    activation_block,
    environment_change,
    read_env_dump,
    split_path_change,
    variables_script,
)


def dump(path, values):
    path.write_bytes(b"".join(f"{k}={v}".encode() + b"\0" for k, v in values.items()))
    return path


def test_env_dump_keeps_newlines_and_equals_signs(tmp_path):
    path = dump(tmp_path / "e.env", {"A": "1=2", "B": "two\nlines", "C": ""})
    assert read_env_dump(path) == {"A": "1=2", "B": "two\nlines", "C": ""}


def test_path_changes_split_into_prepend_and_append():
    assert split_path_change("/usr/bin:/bin", "/env/bin:/usr/bin:/bin:/opt/x") == (["/env/bin"], ["/opt/x"])
    assert split_path_change("", "/env/bin") == (["/env/bin"], [])
    # A script that rebuilds PATH: what it added goes in front.
    assert split_path_change("/usr/bin:/bin", "/bin:/new:/usr/bin") == (["/new"], [])


def test_environment_change_ignores_shell_internals():
    before = {"PATH": "/usr/bin", "HOME": "/h", "PWD": "/a", "SHLVL": "1", "GONE": "x"}
    after = {"PATH": "/env/bin:/usr/bin", "HOME": "/h", "PWD": "/b", "SHLVL": "2", "CONDA_PREFIX": "/env",
             "BASH_FUNC_f%%": "() { :; }"}
    change = environment_change(before, after)
    assert change["environment"] == {"CONDA_PREFIX": "/env"}
    assert change["prepend"] == {"PATH": ["/env/bin"]} and change["append"] == {"PATH": []}


def test_activation_block_with_and_without_scripts_at_launch(tmp_path):
    dump(tmp_path / "before.env", {"PATH": "/usr/bin"})
    dump(tmp_path / "standard.env", {"PATH": "/T/e/bin:/usr/bin", "CONDA_PREFIX": "/T/e"})
    dump(tmp_path / "after.env", {"PATH": "/T/e/bin:/usr/bin", "CONDA_PREFIX": "/T/e", "FROM_SCRIPT": "yes"})
    captured = activation_block(tmp_path, "/T/e", scripts_at_launch=False)
    assert captured["environment"] == {"CONDA_PREFIX": "/T/e", "FROM_SCRIPT": "yes"}
    assert "scripts" not in captured
    rerun = activation_block(tmp_path, "/T/e", scripts_at_launch=True)
    assert rerun["environment"] == {"CONDA_PREFIX": "/T/e"}
    assert rerun["scripts"] == "/T/e/etc/conda/activate.d"
    assert activation_block(tmp_path / "missing", "/T/e", False) is None


def test_variables_survive_shell_quoting():
    values = {"QUOTED": "it's \"here\" $HOME `x`", "PLAIN": "4"}
    script = variables_script(values) + 'printf "%s|%s" "$QUOTED" "$PLAIN"'
    output = subprocess.run(["/bin/sh", "-c", script], check=True, stdout=subprocess.PIPE).stdout.decode()
    assert output == "it's \"here\" $HOME `x`|4"
