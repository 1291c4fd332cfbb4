"""Build containers: what they bind, the environment they get and the command that starts them."""
import dataclasses
import os
from pathlib import Path

import pytest
from tykky_shim import launcher

from tests.fake_runner import fake_runner
from tykky import container_exec, log
from tykky.config import Config
from tykky.container_exec import BuildContainer, host_top_level_dirs, template
from tykky.hostpip import host_pip_binds
from tykky.runtime import Runtime

RUNTIME = Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5))


def container(tmp_path: Path, tree: object = "tree", **values) -> BuildContainer:  # type: ignore[no-untyped-def]
    overlays = values.pop("overlays", ())
    return BuildContainer(RUNTIME, tmp_path / "c.sif", Config(**values),
                          None if tree is None else tmp_path / str(tree), tmp_path / "build", overlays=overlays)


@pytest.fixture
def no_host_pip(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """No pip configuration or CA files of the caller's to bind (the machine's may remain)."""
    for name in ("PIP_CONFIG_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE",
                 "CURL_CA_BUNDLE", "PIP_CLIENT_CERT", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg"))


def test_host_top_level_directories_are_real_directories_not_kernel_ones():
    found = host_top_level_dirs(())
    assert "/tmp" in found and "/usr" in found
    assert not {"/proc", "/sys", "/dev"} & set(found)
    assert all(os.path.isdir(p) and not os.path.islink(p) for p in found)
    assert "/tmp" not in host_top_level_dirs(("/tmp",))


def test_without_isolate_the_host_is_bound_then_the_build_then_the_tree(tmp_path):
    binds = container(tmp_path, excluded_mount_points=("/opt",)).binds()
    assert binds == host_top_level_dirs(("/opt",)) + [str(tmp_path / "build"), f"{tmp_path / 'tree'}:/TYKKY"]
    assert "/opt" not in binds


def test_isolated_builds_bind_existing_mount_points_only(tmp_path, no_host_pip):
    (tmp_path / "data").mkdir()
    (tmp_path / "file").write_text("")
    config = {"isolate": True, "installation_path": "/opt/app",
              "mount_points": (str(tmp_path / "data"), str(tmp_path / "missing"), str(tmp_path / "file"))}
    host_pip = host_pip_binds(os.environ)  # the machine's own /etc/pip.conf, if it has one
    assert container(tmp_path, **config).binds() == [str(tmp_path / "data")] + host_pip + [
        str(tmp_path / "build"), f"{tmp_path / 'tree'}:/opt/app"]


def test_isolated_builds_bind_the_hosts_pip_configuration(tmp_path, no_host_pip, monkeypatch):
    pip_conf, ca = tmp_path / "pip.conf", tmp_path / "ca.pem"
    ca.write_text("")
    pip_conf.write_text(f"[global]\ncert = {ca}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(pip_conf))
    binds = container(tmp_path, isolate=True).binds()
    assert str(pip_conf) in binds and str(ca) in binds
    assert binds.index(str(ca)) < binds.index(str(tmp_path / "build"))


def test_extra_binds_come_after_the_build_and_before_the_tree(tmp_path):
    extra = container(tmp_path, extra_bind_mounts=("/scratch/a", "/x:/y")).binds(["/merged"])
    assert extra[-5:] == [str(tmp_path / "build"), "/scratch/a", "/x:/y", "/merged", f"{tmp_path / 'tree'}:/TYKKY"]


def test_without_site_binds_only_the_build_its_pip_files_and_the_tree_are_bound(tmp_path, no_host_pip):
    """What probes use to look at the image itself, under no host directory of the site's policy."""
    (tmp_path / "data").mkdir()
    for policy in ({"isolate": True, "mount_points": (str(tmp_path / "data"),)}, {"isolate": False}):
        bare = dataclasses.replace(container(tmp_path, **policy), site_binds=False)
        host_pip = host_pip_binds(os.environ) if policy["isolate"] else []
        assert bare.binds() == host_pip + [str(tmp_path / "build"), f"{tmp_path / 'tree'}:/TYKKY"]


def test_the_policy_binds_are_the_mount_points_or_the_hosts_directories(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    isolated = container(tmp_path, isolate=True, mount_points=(str(tmp_path / "data"), str(tmp_path / "gone")))
    assert isolated.policy_binds() == [str(tmp_path / "data")]
    monkeypatch.setattr(container_exec, "host_top_level_dirs", lambda excluded: ["/TYKKY", "/opt"])
    assert container(tmp_path).policy_binds() == ["/opt"]


def test_wrap_container_and_stacked_builds_mount_no_tree(tmp_path):
    binds = container(tmp_path, tree=None).binds()
    assert binds[-1] == str(tmp_path / "build") and not any(b.endswith(":/TYKKY") for b in binds)


def test_a_stacked_container_binds_nothing_over_the_installation_path(tmp_path, monkeypatch):
    monkeypatch.setattr(container_exec, "host_top_level_dirs", lambda excluded: ["/TYKKY", "/tmp", "/usr"])
    stacked = container(tmp_path, tree=None, overlays=("/p/img.sqfs:ro", "/b/overlay"))
    binds = stacked.binds()
    assert "/tmp" in binds and "/usr" in binds
    # The launcher leaves such binds out at launch (its own overlaps test); the build should too.
    assert [b for b in binds if launcher.overlaps(launcher.bind_destination(b), "/TYKKY")] == []


def test_a_build_tree_under_a_host_directory_is_bound_without_its_top_level_directory(tmp_path):
    binds = container(tmp_path, installation_path="/tmp/app").binds()
    assert "/tmp" not in binds and "/usr" in binds and binds[-1] == f"{tmp_path / 'tree'}:/tmp/app"


def test_a_build_that_leaves_out_the_runtimes_tmp_gets_a_tmpdir_of_its_own(tmp_path, monkeypatch):
    fake = fake_runner(monkeypatch)
    (tmp_path / "build").mkdir()
    monkeypatch.setenv("TMPDIR", "/tmp")
    container(tmp_path, isolate=True, installation_path="/tmp/app").run(["true"], what="testing")
    (call,) = fake.calls
    assert "tmp" in call["argv"][call["argv"].index("--no-mount") + 1].split(",")
    assert call["env"]["TMPDIR"] == str(tmp_path / "build" / "tmp") and (tmp_path / "build" / "tmp").is_dir()


def test_writable_tree_is_the_upper_directory_of_the_last_overlay(tmp_path):
    stacked = container(tmp_path, tree=None, installation_path="/opt/app/",
                        overlays=("/p/img.sqfs:ro", "/b/overlay"))
    assert stacked.writable_tree() == Path("/b/overlay/upper/opt/app")
    assert container(tmp_path, tree=None, overlays=("/p/img.sqfs:ro",)).writable_tree() is None
    assert container(tmp_path).writable_tree() is None


def test_environment_drops_the_callers_python_and_runtime_settings(tmp_path, monkeypatch):
    for name, value in (("PYTHONPATH", "/mine"), ("PYTHONHOME", "/h"), ("PYTHONUSERBASE", "/u"),
                        ("APPTAINER_BIND", "/leak"), ("SINGULARITY_CONTAINER", "/c.sif"),
                        ("APPTAINERENV_FOO", "bar"), ("APPTAINER_CACHEDIR", "/cache"),
                        ("APPTAINER_TMPDIR", "/tmp/t"), ("APPTAINER_NV", "1"), ("KEPT", "yes")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", "/host/bin:/usr/bin")
    environment = container(tmp_path).environment({"PIP_NO_INPUT": "1", "KEPT": "given"})
    assert not {"PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE", "APPTAINER_BIND", "SINGULARITY_CONTAINER",
                "APPTAINERENV_FOO"} & set(environment)
    assert environment["APPTAINER_CACHEDIR"] == "/cache" and environment["APPTAINER_TMPDIR"] == "/tmp/t"
    assert environment["APPTAINER_NV"] == "1"
    assert environment["KEPT"] == "given" and environment["PIP_NO_INPUT"] == "1"
    # Not isolated: the container's programs search the host's PATH, as at launch.
    assert environment["APPTAINERENV_PATH"] == environment["SINGULARITYENV_PATH"] == "/host/bin:/usr/bin"


def test_isolated_environment_leaves_the_containers_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/host/bin")
    environment = container(tmp_path, isolate=True).environment({})
    assert "APPTAINERENV_PATH" not in environment and "SINGULARITYENV_PATH" not in environment


@pytest.mark.parametrize(("gpu", "flags"), [("", []), ("nv", ["--nv"]), ("rocm", ["--rocm"]), ("none", [])])
def test_run_starts_the_runtime_with_overlays_gpus_binds_and_the_command(monkeypatch, tmp_path, gpu, flags):
    fake = fake_runner(monkeypatch, returncode=3, output="said")
    stacked = container(tmp_path, tree=None, gpu=gpu, overlays=("/p/img.sqfs:ro", "/b/overlay"))
    completed = stacked.run(["pip", "install", "x"], what="installing", variables={"V": "1"},
                            extra_binds=["/extra"], check=False)
    assert (completed.returncode, completed.output) == (3, "said")
    (call,) = fake.calls
    assert call["argv"] == (["/usr/bin/apptainer", "-q", "exec", "--overlay", "/p/img.sqfs:ro",
                             "--overlay", "/b/overlay"] + flags +
                            ["--bind", ",".join(stacked.binds(["/extra"])), str(tmp_path / "c.sif"),
                             "pip", "install", "x"])
    assert call["cwd"] == str(tmp_path / "build") and call["what"] == "installing"
    assert call["env"]["V"] == "1" and call["check"] is False


def test_templates_are_the_shipped_scripts():
    assert template("probe.sh").startswith("#!/bin/sh")


def test_installation_bins_are_left_out_of_the_build_path(tmp_path, monkeypatch, capsys):
    ours = tmp_path / "ours"
    (ours / "_tykky").mkdir(parents=True)
    (ours / "_tykky" / "manifest.json").write_text("{}")
    theirs = tmp_path / "theirs"
    for name in ("bin", "_bin"):
        (theirs / name).mkdir(parents=True)
    (theirs / "common.sh").write_text("")
    (tmp_path / "plain" / "bin").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(container_exec, "_REPORTED_PATH_ENTRIES", set())
    path = f"{ours}/bin:/usr/bin:theirs/bin:{tmp_path}/plain/bin:/bin"
    log.configure(2)
    container_exec.build_path(path)
    assert container_exec.build_path(path) == f"/usr/bin:{tmp_path}/plain/bin:/bin"
    assert capsys.readouterr().err == (f"[ INFO ] Removed {ours}/bin, theirs/bin from the build's PATH: the "
                                       "programs of an installation would run inside the build container.\n")
