"""The command line parses as Tykky's does: abbreviations, ambiguity, help and usage errors.

TYKKY_OPTIONS are the long options of Tykky's own argparse parsers, in the order they define
them (its interface, as `-h` lists it there); what argparse makes of their abbreviations there
must be what it makes of them here.
"""
import argparse
from typing import List, Optional, Sequence

import pytest

from tykky import cli

TYKKY_OPTIONS = {
    ("pip-containerize", "new"): ["--help", "--prefix", "--uv", "--slim", "--pyver", "--system-site-packages",
                                  "--nocache", "--post-install", "--pre-install", "--environ", "--wrapper-paths"],
    ("pip-containerize", "update"): ["--help", "--requirements-file", "--nocache", "--post-install",
                                     "--pre-install", "--environ", "--wrapper-paths"],
    ("conda-containerize", "new"): ["--help", "--prefix", "--mamba", "--uv", "--nocache", "--post-install",
                                    "--pre-install", "--environ", "--wrapper-paths", "--requirement"],
    ("conda-containerize", "update"): ["--help", "--nocache", "--post-install", "--pre-install", "--environ",
                                       "--wrapper-paths", "--requirement"],
    ("wrap-container",): ["--help", "--yaml", "--environ", "--wrapper-paths", "--prefix"],
    ("wrap-install",): ["--help", "--post-install", "--pre-install", "--environ", "--wrapper-paths", "--prefix",
                        "--yaml", "--mask"],
}
POSITIONAL = {"new": "input.txt", "update": "DIR", "wrap-container": "image.sif", "wrap-install": "DIR"}
FLAGS = ("--uv", "--slim", "--system-site-packages", "--nocache", "--mamba", "--mask")


@pytest.fixture(autouse=True)
def site(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CW_GLOBAL_YAML", "debian-test")
    monkeypatch.setenv("COLUMNS", "100")


def run(argv: Sequence[str], capsys) -> "tuple[int, str, str]":  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_request:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return exit_request.value.code, out, err


def parse(command: Sequence[str], words: List[str]) -> argparse.Namespace:
    parser = cli.command_parser(command[0])
    return parser.parse_args(list(command[1:]) + words + [POSITIONAL[command[-1]]])


def option_words(option: str, written: Optional[str] = None) -> List[str]:
    return [written or option] if option in FLAGS else [written or option, "VALUE"]


def abbreviations(options: Sequence[str]) -> "list[tuple[str, str]]":
    return [(option, option[:length]) for option in options if option != "--help"
            for length in range(3, len(option) + 1)]


@pytest.mark.parametrize("command", list(TYKKY_OPTIONS))
def test_every_abbreviation_means_here_what_it_means_in_tykky(command, capsys):
    for option, prefix in abbreviations(TYKKY_OPTIONS[command]):
        tykky_matches = [o for o in TYKKY_OPTIONS[command] if o.startswith(prefix)]
        if prefix in TYKKY_OPTIONS[command] or len(tykky_matches) == 1:
            assert parse(command, option_words(option, prefix)) == parse(command, option_words(option)), prefix
        else:
            code, _out, err = run([command[0], *command[1:], prefix, "VALUE", POSITIONAL[command[-1]]], capsys)
            assert code == 2
            assert f"error: ambiguous option: {prefix} could match {', '.join(tykky_matches)}\n" in err


def test_update_takes_post_for_post_install():
    arguments = parse(("pip-containerize", "update"), ["--post", "post.sh"])
    assert arguments.post_install == "post.sh" and arguments.dir == "DIR"


def test_an_ambiguous_prefix_names_the_candidates(capsys):
    code, out, err = run(["pip-containerize", "update", "DIR", "--p", "x"], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("usage: pip-containerize update [-h]")
    assert err.endswith("pip-containerize update: error: ambiguous option: --p could match --post-install, "
                        "--pre-install\n")


def test_options_of_our_own_do_not_take_tykkys_abbreviations():
    assert parse(("wrap-install",), ["--m"]).mask is True
    assert parse(("conda-containerize", "new"), ["--m"]).mamba is True
    assert parse(("conda-containerize", "update"), ["--en", "env.sh"]).environ == "env.sh"
    assert parse(("pip-containerize", "new"), ["--modulefile-t"]).modulefile_tcl is True


@pytest.mark.parametrize("command", ["pip-containerize", "conda-containerize", "wrap-container", "wrap-install"])
def test_help_flag_and_no_arguments_show_the_help(command, capsys):
    for argv in ([command, "-h"], [command]):
        code, out, err = run(argv, capsys)
        assert (code, err) == (0, "")
        assert out.startswith(f"usage: {command} [-h]")
        assert "  -h, --help  " in out and "show this help message and exit" in out


@pytest.mark.parametrize("argv, missing", [
    (["pip-containerize", "new"], "requirements_file"), (["pip-containerize", "update"], "dir"),
    (["conda-containerize", "new"], "env_file"), (["conda-containerize", "advanced"], "yaml"),
    (["wrap-container", "-w", "/bin"], "container"), (["wrap-install", "-w", "bin"], "dir"),
    (["tykky", "setup"], "--config"), (["tykky", "compact"], "prefix"),
])
def test_missing_arguments_are_usage_errors(argv, missing, capsys):
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert err.startswith("usage: ")
    assert err.endswith(f"error: the following arguments are required: {missing}\n")


def test_unknown_option_and_exclusive_options_are_usage_errors(capsys):
    code, _out, err = run(["pip-containerize", "new", "--frobnicate", "req.txt"], capsys)
    assert code == 2 and err.endswith("pip-containerize: error: unrecognized arguments: --frobnicate\n")
    code, _out, err = run(["pip-containerize", "new", "--uv", "--slim", "req.txt"], capsys)
    assert code == 2 and err.endswith("error: argument --slim: not allowed with argument --uv\n")


def test_the_same_commands_under_tykky(capsys):
    code, out, _err = run(["tykky", "pip-containerize"], capsys)
    assert code == 0 and out.startswith("usage: tykky pip-containerize [-h] {new,update}")
    code, out, _err = run(["tykky"], capsys)
    assert code == 0 and out.startswith("usage: tykky [-h] [--version] COMMAND ...")
    code, out, _err = run(["tykky", "warm"], capsys)
    assert code == 0 and out.startswith("usage: tykky warm [-h] {status,stop}")
    code, out, _err = run(["tykky", "--version"], capsys)
    assert code == 0 and out == f"tykky {cli.__version__}\n"


def test_values_become_the_configuration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "post.sh").write_text("echo post\n")
    arguments = cli.command_parser("pip-containerize").parse_args(
        ["new", "--prefix", "p", "--post", "post.sh", "-w", "/a,/b", "--uv", "--modulefile", "m", "req.txt"])
    values = cli._option_values(arguments)
    assert values["installation_prefix"] == str(tmp_path / "p")
    assert values["post_install"] == ["echo post\n"] and values["wrapper_paths"] == ["/a", "/b"]
    assert values["modulefile_dir"] == str(tmp_path / "m") and arguments.uv is True
