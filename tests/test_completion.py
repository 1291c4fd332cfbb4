"""Completion answered from the parser: subcommands, options (abbreviated ones too), file values."""
import pytest

from tykky import cli, completion


def answer(words: str, environ_extra=None) -> "list[str]":  # type: ignore[no-untyped-def]
    parser = cli.entry_parser(words.split()[0])
    split = words.split(" ")
    return completion.candidates(parser, split[1:-1], split[-1])


def test_commands_and_subcommands():
    assert answer("tykky acti") == ["plain,activate"]
    assert answer("tykky w") == ["plain,wrap-container", "plain,wrap-install", "plain,warm"]
    assert answer("pip-containerize ") == ["plain,new", "plain,update"]
    assert answer("tykky warm s") == ["plain,status", "plain,stop"]


def test_options_and_their_values():
    assert answer("pip-containerize update DIR --po") == ["plain,--post-install"]
    assert answer("wrap-container --pre") == ["plain,--prefix"]
    assert answer("pip-containerize update DIR --post ") == ["file,"]
    assert answer("pip-containerize new --uv ") == ["file,"]  # a flag takes no value: the positional
    assert answer("wrap-install --mask=x ") == ["file,"]


def test_installation_names_for_activate(monkeypatch):
    monkeypatch.setattr(cli, "_complete_installations", lambda incomplete: [incomplete + "-one"])
    assert answer("tykky activate al") == ["plain,al-one"]


def test_the_program_answers_the_shell(capsys, monkeypatch):
    monkeypatch.setenv("_TYKKY_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "tykky\nacti")
    monkeypatch.setenv("COMP_CWORD", "1")
    with pytest.raises(SystemExit) as exit_request:
        cli.main(["tykky"])
    assert exit_request.value.code == 0 and capsys.readouterr().out == "plain,activate\n"
