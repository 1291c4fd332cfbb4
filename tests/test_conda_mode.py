"""conda mode's decisions that need no container: channels, specs on update, paths, advanced YAML."""
import pytest

from tykky.commands.conda_containerize import advanced_values
from tykky.conda_env_file import parse_env_text
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.modes.conda import CondaMode, CondaState, check_env_name, resolve_channels, wrapper_paths

CONFIG = Config(installation_path="/TYKKY", default_channels=("site-forge",))


def test_defaults_and_nodefaults_follow_the_site_configuration():
    assert resolve_channels(CONFIG, ()) == ("site-forge",)
    assert resolve_channels(CONFIG, ("file:///c", "defaults")) == ("file:///c", "site-forge")
    assert resolve_channels(CONFIG, ("file:///c", "nodefaults")) == ("file:///c",)


def test_wrapper_paths_are_the_env_bin_and_w_paths():
    config = CONFIG.with_values(env_name="analysis", wrapper_paths=("/opt/tool/bin", "analysis/libexec"))
    assert wrapper_paths(config) == ["/TYKKY/analysis/bin", "/opt/tool/bin", "/TYKKY/analysis/libexec"]


@pytest.mark.parametrize("name", ["base", "a/b", "", "bin"])
def test_env_names_that_cannot_be_a_directory_are_refused(name):
    with pytest.raises(TykkyError, match="env_name"):
        check_env_name(CONFIG.with_values(env_name=name))


def test_state_round_trips_through_the_image(tmp_path):
    state = CondaState(env_name="env1", channels=("c",), specs=("a", "b >=1"), base_specs=("conda",),
                       variables={"X": "1"})
    state.save(tmp_path)
    assert CondaState.load(tmp_path) == state
    assert CondaState.load(tmp_path / "nothing") is None


def env(text, path="env.yml"):
    return parse_env_text(path, text)


def test_update_keeps_previous_specs_and_adds_new_ones():
    previous = CondaState(env_name="env1", channels=("file:///c",), specs=("python=3.11", "numpy"))
    build = CondaMode(env("channels: [file:///d]\ndependencies:\n  - numpy >=2\n  - scipy\n"))
    state, explicit = build._wanted_state(CONFIG, previous)
    assert state.specs == ("python=3.11", "numpy >=2", "scipy")
    assert state.channels == ("file:///c", "file:///d")
    assert explicit == []


def test_pip_is_added_when_a_pip_section_needs_it():
    build = CondaMode(env("channels: [file:///c]\ndependencies:\n  - python\n  - pip:\n    - six\n"))
    state, _ = build._wanted_state(CONFIG, None)
    assert state.specs == ("python", "pip")


def test_mamba_adds_a_base_environment():
    build = CondaMode(env("channels: [file:///c]\ndependencies:\n  - python\n"))
    state, _ = build._wanted_state(CONFIG.with_values(use_mamba=True), None)
    assert state.base_specs == ("conda", "mamba")


def test_explicit_list_cannot_update():
    explicit = env("@EXPLICIT\nfile:///c/noarch/a-1-0.tar.bz2\n", "spec.txt")
    state, urls = CondaMode(explicit)._wanted_state(CONFIG, None)
    assert urls == ["file:///c/noarch/a-1-0.tar.bz2"]
    with pytest.raises(TykkyError, match="explicit list"):
        CondaMode(explicit)._wanted_state(CONFIG, CondaState(env_name="env1"))


def test_advanced_yaml_in_tykky_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.sh").write_text("echo from a\n")
    (tmp_path / "conf.yaml").write_text(
        "mode: conda\nenv_file: env.yml\nrequirements_file: req.txt\nenv_name: analysis\n"
        "pre_install:\n  - filenames:\n      - a.sh\n  - echo start\npost_install:\n  - echo done\n")
    values = advanced_values(str(tmp_path / "conf.yaml"))
    assert values["env_file"] == str(tmp_path / "env.yml")
    assert values["requirements_file"] == str(tmp_path / "req.txt")
    assert values["pre_install"] == ("echo from a\n", "echo start")
    assert values["post_install"] == ("echo done",)
    assert values["env_name"] == "analysis"


@pytest.mark.parametrize("text, words", [
    ("mode: pip\nenv_file: e.yml\n", "mode: pip"),
    ("requirements_file: r.txt\n", "does not set env_file"),
    ("env_file: e.yml\nno_such_key: 1\n", "Unknown configuration key 'no_such_key'"),
])
def test_advanced_yaml_mistakes(tmp_path, text, words):
    (tmp_path / "conf.yaml").write_text(text)
    with pytest.raises(TykkyError, match=words):
        advanced_values(str(tmp_path / "conf.yaml"))


def test_condarc_is_read_only_when_enabled(tmp_path, monkeypatch):
    from tykky.modes.conda import condarc_settings

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".condarc").write_text("channels:\n  - file:///mine\nchannel_alias: https://mirror.example/\n"
                                       "auto_activate_base: false\n")
    assert condarc_settings(CONFIG) == {}
    assert condarc_settings(CONFIG.with_values(enable_condarc=True)) == {
        "channels": ["file:///mine"], "channel_alias": "https://mirror.example/"}


def test_nocache_gives_the_solver_a_throwaway_package_cache(tmp_path):
    from types import SimpleNamespace

    container = SimpleNamespace(tree=tmp_path / "tree", build=tmp_path / "build", lower_removals=True)
    state = CondaState(env_name="env1", channels=("file:///c",), specs=("a",))
    build = CondaMode(None)
    assert build._request(CONFIG, container, state, [])["cache_dir"] is None
    request = build._request(CONFIG.with_values(no_cache=True), container, state, [])
    assert request["cache_dir"] == str(tmp_path / "build" / "pkgs")
    assert request["target_prefix"] == str(tmp_path / "tree" / "env1")
    assert request["alternative_target_prefix"] == "/TYKKY/env1"
