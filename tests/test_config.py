"""Site configuration merging and validation."""
from pathlib import Path

import pytest

from tykky.config import Config, build_config, read_site_config, read_user_config
from tykky.errors import TykkyError


def site(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "site.yaml"
    path.write_text(text)
    return {"CW_GLOBAL_YAML": str(path)}


def test_defaults_force_and_user_values(tmp_path):
    environ = site(tmp_path, "defaults:\n  num_cpus: 1\n  isolate: yes\nforce:\n  installation_path: /FORCED\n")
    config = build_config({"isolate": False, "installation_path": "/mine"}, environ)
    assert config.isolate is False  # the user's value beats a default
    assert config.installation_path == "/FORCED"  # force beats the user
    assert config.num_cpus == 1


def test_prepends_and_appends_wrap_list_values(tmp_path):
    environ = site(tmp_path, "defaults:\n  mount_points: [/b]\nprepends:\n  mount_points: [/a]\n"
                             "appends:\n  mount_points: [/c]\n")
    assert build_config({}, environ).mount_points == ("/a", "/b", "/c")


def test_unknown_key_names_key_and_file(tmp_path):
    environ = site(tmp_path, "defaults:\n  instalation_path: /x\n")
    with pytest.raises(TykkyError, match="instalation_path.*site.yaml"):
        build_config({}, environ)


def test_wrong_type_names_key_and_expected_type(tmp_path):
    environ = site(tmp_path, "defaults:\n  num_cpus: many\n")
    with pytest.raises(TykkyError, match="num_cpus.*whole number"):
        build_config({}, environ)


def test_unknown_section_is_an_error(tmp_path):
    with pytest.raises(TykkyError, match="Unknown section 'default'"):
        read_site_config(Path(site(tmp_path, "default:\n  isolate: no\n")["CW_GLOBAL_YAML"]))


def test_invalid_yaml_reports_line(tmp_path):
    environ = site(tmp_path, "defaults:\n  isolate: [\n")
    with pytest.raises(TykkyError, match="not valid YAML at line"):
        build_config({}, environ)


def test_tykky_site_config_keys_carry_over(tmp_path):
    environ = site(tmp_path, "defaults:\n  env_name: env1\n  conda_version: latest\n  update_mode: new\n"
                             "force:\n  conda_arch: Linux-x86_64\n  workdir: $PWD\n")
    build_config({}, environ)


def test_environment_variables_and_cpu_cap(tmp_path, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    environ = site(tmp_path, "defaults:\n  num_cpus: 8\n  max_num_cpus: 64\n")
    environ.update({"CW_LOG_LEVEL": "3", "CW_DEBUG_KEEP_FILES": "1", "CW_NO_FIX_PERM": "1",
                    "CW_BUILD_TMPDIR": "/scratch/x", "CW_EXTRA_BIND_MOUNTS": "/a,/b"})
    config = build_config({}, environ)
    assert (config.max_num_cpus, config.num_cpus) == (2, 2)
    assert config.log_level == 3 and config.debug_keep_files and not config.fix_permissions
    assert config.build_tmpdir_base == "/scratch/x"
    assert config.extra_bind_mounts == ("/a", "/b")


def test_shipped_config_by_name():
    config = build_config({}, {"CW_GLOBAL_YAML": "debian-test"})
    assert config.site_config_path.endswith("debian-test.yaml")


def test_missing_site_config_lists_shipped_ones():
    with pytest.raises(TykkyError, match="generic"):
        build_config({}, {"CW_GLOBAL_YAML": "/no/such/file.yaml"})


def test_user_config_file_validated_like_site(tmp_path):
    path = tmp_path / "conf.yaml"
    path.write_text("wrapper_paths: /opt/bin\nisolate: maybe\n")
    with pytest.raises(TykkyError, match="isolate.*conf.yaml"):
        read_user_config(str(path))


def test_config_is_frozen():
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().isolate = True  # type: ignore[misc]


def test_gpu_setting_is_one_of_nv_rocm_none(tmp_path):
    assert build_config({}, site(tmp_path, "defaults:\n  gpu: nv\n")).gpu == "nv"
    # YAML reads `no` as false: it means none, as the word does.
    assert build_config({}, site(tmp_path, "defaults:\n  gpu: no\n")).gpu == "none"
    with pytest.raises(TykkyError, match="'gpu' .* must be one of nv, rocm, none, not 'cuda'"):
        read_site_config(Path(site(tmp_path, "defaults:\n  gpu: cuda\n")["CW_GLOBAL_YAML"]))


def test_given_keys_name_what_the_user_chose(tmp_path):
    config = build_config({"gpu": "rocm"}, site(tmp_path, "defaults:\n  isolate: yes\n"))
    assert config.given_keys == ("gpu",)


def test_lock_timeout_waits_by_default_and_comes_from_the_site_or_the_environment(tmp_path):
    environ = site(tmp_path, "defaults:\n  lock_timeout: 30\n")
    assert build_config({}, {**environ, "CW_GLOBAL_YAML": "generic"}).lock_timeout == -1
    assert build_config({}, environ).lock_timeout == 30
    assert build_config({}, {**environ, "TYKKY_LOCK_TIMEOUT": "0"}).lock_timeout == 0
    with pytest.raises(TykkyError, match="TYKKY_LOCK_TIMEOUT=soon is not a whole number"):
        build_config({}, {**environ, "TYKKY_LOCK_TIMEOUT": "soon"})
