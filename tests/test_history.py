"""share/tykky: numbered history entries, the inputs copied into them and the config snapshot."""
import json

import pytest
import yaml

from tykky import __version__, history
from tykky.config import Config
from tykky.errors import TykkyError


def test_entries_are_numbered_after_the_highest_one(tmp_path):
    assert history.next_entry(tmp_path, "new") == tmp_path / "share" / "tykky" / "history" / "0001-new"
    entries = tmp_path / history.SHARE / "history"
    for name in ("0001-new", "0009-update", "0010-update", "notes"):
        (entries / name).mkdir(parents=True)
    assert history.next_entry(tmp_path, "update") == entries / "0011-update"


def test_record_copies_the_inputs_and_writes_command_config_and_version(tmp_path):
    requirements = tmp_path / "req.txt"
    requirements.write_text("numpy\n")
    prefix = tmp_path / "prefix"
    config = Config(mount_points=("/scratch",), requirements_file=str(requirements))
    entry = history.record(prefix, "new", config, {"requirements.txt": str(requirements), "environ.sh": None},
                           argv=["pip-containerize", "new", "req.txt"])
    assert entry.name == "0001-new"
    assert sorted(p.name for p in entry.iterdir()) == ["command.json", "requirements.txt"]
    assert (entry / "requirements.txt").read_text() == "numpy\n"
    command = json.loads((entry / "command.json").read_text())
    assert command["argv"] == ["pip-containerize", "new", "req.txt"] and command["tool_version"] == __version__
    snapshot = yaml.safe_load((prefix / history.SHARE / "config.yaml").read_text())
    assert snapshot["mount_points"] == ["/scratch"] and snapshot["requirements_file"] == str(requirements)
    assert (prefix / history.SHARE / "version").read_text() == __version__ + "\n"
    assert history.record(prefix, "update", config, {}).name == "0002-update"


def test_an_unreadable_input_is_named(tmp_path):
    with pytest.raises(TykkyError, match=rf"Cannot read {tmp_path}/missing.txt: No such file"):
        history.copy_input(str(tmp_path / "missing.txt"), tmp_path / "copy")


def test_the_environ_file_is_kept_where_launches_read_it(tmp_path):
    environ = tmp_path / "env.sh"
    environ.write_text("export A=1\n")
    prefix = tmp_path / "prefix"
    entry = history.record(prefix, "new", Config(), {"environ.sh": str(environ)})
    assert (prefix / history.ENVIRON_FILE).read_text() == (entry / "environ.sh").read_text() == "export A=1\n"
    history.record(prefix, "update", Config(), {})
    assert (prefix / history.ENVIRON_FILE).read_text() == "export A=1\n"  # an update without one keeps it


def test_an_update_reads_only_the_saved_values_it_keeps(tmp_path):
    assert history.saved_values(tmp_path, ("isolate",)) == {}
    (tmp_path / history.SHARE).mkdir(parents=True)
    (tmp_path / history.SHARE / "config.yaml").write_text("")
    assert history.saved_values(tmp_path, ("isolate",)) == {}
    (tmp_path / history.SHARE / "config.yaml").write_text(history.config_snapshot(Config(mount_points=("/s",))))
    assert history.saved_values(tmp_path, ("mount_points", "nonexistent")) == {"mount_points": ("/s",)}
