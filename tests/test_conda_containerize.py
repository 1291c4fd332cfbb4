"""conda-containerize's command layer: what an update keeps, and the inputs new needs."""
import pytest

from tykky import history
from tykky.commands import conda_containerize
from tykky.config import Config
from tykky.errors import TykkyError


def test_an_update_keeps_the_environment_choices_of_the_first_build(tmp_path):
    (tmp_path / history.SHARE).mkdir(parents=True)
    first = Config(env_name="analysis", use_mamba=True, default_channels=("site-forge", "bioconda"),
                   channel_alias="https://mirror.invalid/", mount_points=("/scratch",))
    (tmp_path / history.SHARE / "config.yaml").write_text(history.config_snapshot(first))
    assert history.saved_values(tmp_path, conda_containerize.KEPT_KEYS) == {
        "env_name": "analysis", "use_mamba": True, "activate_scripts_at_launch": False,
        "channel_alias": "https://mirror.invalid/", "default_channels": ("site-forge", "bioconda")}
    kept = Config().with_values(**history.saved_values(tmp_path, conda_containerize.KEPT_KEYS))
    assert kept.default_channels == ("site-forge", "bioconda") and kept.mount_points == ()


def test_without_a_saved_configuration_nothing_is_kept(tmp_path):
    assert history.saved_values(tmp_path, conda_containerize.KEPT_KEYS) == {}


def test_new_needs_an_environment_file():
    with pytest.raises(TykkyError, match="No environment file given: pass ENV_FILE"):
        conda_containerize.new(Config())


def test_advanced_commands_are_strings_or_files(tmp_path):
    script = tmp_path / "step.sh"
    script.write_text("make\n")
    assert conda_containerize._commands(["echo a", {"filenames": [str(script)]}], "post_install", "c.yaml") == [
        "echo a", "make\n"]
    assert conda_containerize._commands("echo b", "pre_install", "c.yaml") == ["echo b"]
    with pytest.raises(TykkyError, match=r"Cannot read .*missing.sh, named in 'post_install' of c.yaml"):
        conda_containerize._commands([{"filenames": [str(tmp_path / "missing.sh")]}], "post_install", "c.yaml")
    with pytest.raises(TykkyError, match=r"'pre_install' in c.yaml must list commands"):
        conda_containerize._commands([3], "pre_install", "c.yaml")
