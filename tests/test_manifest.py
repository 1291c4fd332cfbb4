"""The runtime manifest: what the launcher reads, written and read back."""
import json

from tykky import manifest
from tykky.config import build_config
from tykky.manifest import Layer, Manifest


def sample(**values) -> Manifest:  # type: ignore[no-untyped-def]
    return Manifest(tool_version="0", build_id="b", mode="pip", runtime={"name": "apptainer", "path": "/a",
                    "version": "1.4.5"}, container="container.sif", layers=(Layer("img.sqfs", "/TYKKY"),),
                    installation_path="/TYKKY", isolate=False, mount_points=(), excluded_mount_points=(),
                    targets={"python": "/TYKKY/venv/bin/python"}, **values)


def test_step_sharing_round_trips(tmp_path):
    for value in (True, False):
        manifest.write(sample(share_step_container=value), tmp_path)
        assert json.loads((tmp_path / manifest.MANIFEST_PATH).read_text())["share_step_container"] is value
        assert manifest.load(tmp_path).share_step_container is value


def test_step_sharing_is_on_unless_the_site_or_user_turns_it_off(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("defaults:\n  isolate: no\n")
    assert build_config({}, {"CW_GLOBAL_YAML": str(site)}).share_step_container is True
    site.write_text("force:\n  share_step_container: no\n")
    assert build_config({}, {"CW_GLOBAL_YAML": str(site)}).share_step_container is False


def test_an_update_keeps_the_gpu_setting_unless_given_again(tmp_path):
    from tykky.installation import update_config

    manifest.write(sample(gpu="rocm"), tmp_path)
    site = tmp_path / "site.yaml"
    site.write_text("defaults:\n  gpu: nv\n")
    environ = {"CW_GLOBAL_YAML": str(site)}
    assert json.loads((tmp_path / manifest.MANIFEST_PATH).read_text())["gpu"] == "rocm"
    assert update_config(build_config({}, environ), tmp_path).gpu == "rocm"
    assert update_config(build_config({"gpu": "none"}, environ), tmp_path).gpu == "none"
