"""The wrap-container and wrap-install command lines."""
import pytest

from tykky import cli


@pytest.fixture(autouse=True)
def site(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CW_GLOBAL_YAML", "debian-test")


def test_command_default_below_the_users_configuration_file(tmp_path):
    assert cli.make_config({}, defaults={"isolate": True}).isolate is True
    conf = tmp_path / "conf.yaml"
    conf.write_text("isolate: no\n")
    assert cli.make_config({}, str(conf), defaults={"isolate": True}).isolate is False
    assert cli.make_config({}).isolate is False  # the site's default otherwise


@pytest.mark.parametrize("name", ["wrap-container", "wrap-install"])
def test_reachable_by_program_name(name):
    assert cli.entry_parser(f"/somewhere/{name}").prog == name


@pytest.mark.parametrize("name", ["wrap-container", "wrap-install"])
def test_paths_to_wrap_are_required(name, capsys):
    with pytest.raises(SystemExit) as exit_request:
        cli.main([name, "/some/thing"])
    assert exit_request.value.code != 0
    assert "-w" in capsys.readouterr().err


def test_relative_wrap_container_path_fails_cleanly(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_request:
        cli.main(["wrap-container", "-w", "usr/bin", "--prefix", str(tmp_path / "p"), "image.sif"])
    assert exit_request.value.code == 1
    err = capsys.readouterr().err
    assert "must be absolute" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()
