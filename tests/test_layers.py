"""Image layers: how a tree is mounted, when updates stack, and the steps around the runtime."""
import dataclasses
from pathlib import Path

import pytest

from tests.fake_runner import fake_runner
from tests.helpers import RECORDED_RUNTIME
from tykky import layers, squash
from tykky import manifest as manifest_module
from tykky.config import Config
from tykky.errors import TykkyError
from tykky.layers import IMAGE_SRC, OVERLAY
from tykky.manifest import Layer, Manifest
from tykky.runtime import Runtime

RUNTIME = Runtime("apptainer", "/usr/bin/apptainer", (1, 4, 5))


def installed(*layer_list: Layer, path: str = "/TYKKY") -> Manifest:
    return Manifest(tool_version="0", build_id="old", mode="pip", runtime=RECORDED_RUNTIME,
                    container="container.sif", layers=layer_list, installation_path=path, isolate=False,
                    mount_points=(), excluded_mount_points=(), targets={})


@pytest.fixture(autouse=True)
def host(monkeypatch):  # type: ignore[no-untyped-def]
    """The host's real top-level directories, as the launcher's policy finds them: these, here."""
    found = ["/home", "/opt", "/scratch", "/tmp", "/usr"]
    monkeypatch.setattr(layers, "host_top_level_dirs", lambda excluded: [d for d in found if d not in excluded])
    return found


def test_a_path_no_host_directory_hides_is_an_overlay():
    assert layers.layer_mount(Config(installation_path="/TYKKY")) == OVERLAY
    assert layers.layer_mount(Config(installation_path="/TYKKY/deep/tree")) == OVERLAY


def test_a_path_under_a_bound_host_directory_is_bound_in_place():
    # Without isolate every real top-level directory of the host is bound.
    assert layers.layer_mount(Config(installation_path="/tmp/app")) == IMAGE_SRC
    assert layers.layer_mount(Config(installation_path="/tmp")) == IMAGE_SRC
    assert layers.layer_mount(Config(installation_path="/scratch/proj/app")) == IMAGE_SRC


def test_an_excluded_host_directory_hides_nothing():
    config = Config(installation_path="/tmp/app", excluded_mount_points=("/tmp",))
    assert layers.layer_mount(config) == OVERLAY


@pytest.mark.parametrize(("mount_points", "path", "mount"), [
    ((), "/tmp/app", OVERLAY),  # isolate binds only the mount points
    (("/scratch",), "/scratch/proj/app", IMAGE_SRC),
    (("/scratch/",), "/scratch/proj/app", IMAGE_SRC),
    (("/scratch/proj/app",), "/scratch/proj/app", IMAGE_SRC),
    (("/scratch/pro",), "/scratch/proj/app", OVERLAY),  # a name prefix is not a parent
    (("/users", "/projappl"), "/projappl/app", IMAGE_SRC),
])
def test_isolated_builds_look_at_the_mount_points_only(mount_points, path, mount):
    assert layers.layer_mount(Config(isolate=True, mount_points=mount_points, installation_path=path)) == mount


def test_a_mount_point_written_with_a_slash_at_the_installation_path_hides_it():
    config = Config(isolate=True, mount_points=("/scratch/proj/app/",), installation_path="/scratch/proj/app")
    assert layers.layer_mount(config) == IMAGE_SRC


@pytest.mark.parametrize(("path", "mount"), [
    ("/tmp/app", "tmp"), ("/var/tmp/app", "tmp"), ("/home/someone/app", "home"),
])
def test_an_isolated_tree_where_the_runtime_mounts_stays_visible_to_updates(monkeypatch, tmp_path, path, mount):
    monkeypatch.setenv("HOME", "/home/someone")
    config = Config(isolate=True, installation_path=path)
    if layers.layer_mount(config) == IMAGE_SRC:
        return  # bound in place: updates rebuild the image instead
    fake = fake_runner(monkeypatch)
    previous = installed(Layer("img.sqfs", path, OVERLAY), path=path)
    container, _ = layers.stacked_container(RUNTIME, tmp_path, previous, config, tmp_path / "build",
                                            lower_removals=True)
    container.run(["true"], what="updating")
    argv = fake.argvs[0]
    assert "--no-mount" in argv and mount in argv[argv.index("--no-mount") + 1].split(",")


def test_first_layer_names_the_image_target_and_mount():
    assert layers.first_layer(Config(sqfs_image="img.sqfs")) == Layer("img.sqfs", "/TYKKY", OVERLAY)
    assert layers.first_layer(Config(installation_path="/tmp/app")) == Layer("img.sqfs", "/tmp/app", IMAGE_SRC)


def test_only_installations_of_overlay_layers_stack():
    overlay, bound = Layer("a.sqfs", "/TYKKY", OVERLAY), Layer("b.sqfs", "/TYKKY", IMAGE_SRC)
    assert layers.can_stack(installed(overlay))
    assert layers.can_stack(installed(overlay, Layer("c.sqfs", "/TYKKY", OVERLAY)))
    assert not layers.can_stack(installed(bound))
    assert not layers.can_stack(installed(overlay, bound))
    assert not layers.can_stack(installed())  # wrap-container: no image at all
    # A manifest without a mount (the format's default) is bound in place.
    assert not layers.can_stack(installed(Layer("a.sqfs", "/TYKKY")))


def test_new_tree_of_an_overlay_has_its_root_at_the_container_root(tmp_path):
    root, tree = layers.new_tree(tmp_path, Config(installation_path="/TYKKY/sub"))
    assert (root, tree) == (tmp_path / "root", tmp_path / "root" / "TYKKY" / "sub")
    assert tree.is_dir()


def test_new_tree_bound_in_place_is_the_tree_itself(tmp_path):
    root, tree = layers.new_tree(tmp_path, Config(installation_path="/tmp/app"))
    assert root == tree == tmp_path / "tree" and tree.is_dir()


def test_layer_paths_and_names(tmp_path):
    listed = (Layer("img.sqfs", "/TYKKY", OVERLAY), Layer("layer-1.sqfs", "/TYKKY", OVERLAY))
    assert layers.overlays_of(tmp_path, listed) == [f"{tmp_path}/img.sqfs:ro", f"{tmp_path}/layer-1.sqfs:ro"]
    assert layers.layer_name("0123abcd") == "layer-0123abcd.sqfs"
    assert layers.marker_directory(tmp_path, Config(installation_path="/a/b/")) == tmp_path / "a" / "b"
    overlay = layers.upper_directory(tmp_path)
    assert (overlay / "upper").is_dir() and (overlay / "work").is_dir()


def test_stacked_container_puts_the_writable_layer_last(tmp_path):
    prefix = tmp_path / "prefix"
    previous = installed(Layer("img.sqfs", "/TYKKY", OVERLAY), Layer("layer-1.sqfs", "/TYKKY", OVERLAY))
    container, upper = layers.stacked_container(RUNTIME, prefix, previous, Config(), tmp_path / "build",
                                                lower_removals=False)
    assert container.overlays == (f"{prefix}/img.sqfs:ro", f"{prefix}/layer-1.sqfs:ro",
                                  str(tmp_path / "build" / "overlay"))
    assert upper == tmp_path / "build" / "overlay" / "upper" and upper.is_dir()
    assert container.tree is None and container.image == prefix / "container.sif"
    assert container.lower_removals is False


@pytest.mark.parametrize(("returncode", "works"), [(0, True), (1, False)])
def test_removal_check_runs_on_a_scratch_layer_thrown_away(monkeypatch, tmp_path, returncode, works):
    fake = fake_runner(monkeypatch, returncode=returncode)
    prefix, build = tmp_path / "prefix", tmp_path / "build"
    build.mkdir()
    previous = installed(Layer("img.sqfs", "/TYKKY", OVERLAY))
    assert layers.removals_work(RUNTIME, prefix, previous, Config(), build) is works
    (call,) = fake.calls
    argv = call["argv"]
    assert argv[-3:] == ["rm", "-rf", "/TYKKY/.tykky"] and call["check"] is False
    assert argv[argv.index("--overlay") + 1] == f"{prefix}/img.sqfs:ro"
    assert str(build / "removal-check") in argv
    assert not (build / "removal-check").exists()


def test_a_single_overlay_layer_is_unpacked_at_the_root(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch)
    previous = installed(Layer("img.sqfs", "/TYKKY", OVERLAY))
    root, tree = layers.merged_tree(tmp_path / "prefix", previous, RUNTIME, Config(), tmp_path)
    assert (root, tree) == (tmp_path / "merged", tmp_path / "merged" / "TYKKY") and tree.is_dir()
    assert fake.argvs[0][-3:] == ["-d", str(root), str(tmp_path / "prefix" / "img.sqfs")]


def test_a_single_bound_layer_is_unpacked_at_the_installation_path(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch)
    previous = installed(Layer("img.sqfs", "/tmp/app", IMAGE_SRC), path="/tmp/app")
    root, tree = layers.merged_tree(tmp_path / "prefix", previous, RUNTIME, Config(), tmp_path)
    assert root == tree == tmp_path / "merged" / "tmp" / "app"
    assert fake.argvs[0][-3:] == ["-d", str(tree), str(tmp_path / "prefix" / "img.sqfs")]


def test_several_layers_are_merged_by_copying_through_the_overlays(monkeypatch, tmp_path):
    fake = fake_runner(monkeypatch)
    prefix = tmp_path / "prefix"
    previous = installed(Layer("img.sqfs", "/TYKKY", OVERLAY), Layer("layer-1.sqfs", "/TYKKY", OVERLAY))
    root, tree = layers.merged_tree(prefix, previous, RUNTIME, Config(), tmp_path)
    (argv,) = fake.argvs
    assert argv[-4:] == ["cp", "-a", "/TYKKY/.", str(tree)]
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "--overlay"] == [
        f"{prefix}/img.sqfs:ro", f"{prefix}/layer-1.sqfs:ro"]
    assert str(root) in argv[argv.index("--bind") + 1].split(",")


def test_compact_refuses_an_image_bound_in_place(tmp_path):
    manifest_module.write(installed(Layer("img.sqfs", "/tmp/app", IMAGE_SRC), path="/tmp/app"), tmp_path)
    with pytest.raises(TykkyError, match="nothing to compact"):
        layers.compact(tmp_path, RUNTIME, Config(), tmp_path / "build")


def test_compact_squashes_the_merged_tree_into_one_new_layer(monkeypatch, tmp_path):
    def make_image(argv):  # type: ignore[no-untyped-def]
        if argv[0] == "/usr/bin/mksquashfs":
            Path(argv[2]).write_text("image")

    monkeypatch.setattr(squash, "mksquashfs_path", lambda: "/usr/bin/mksquashfs")
    fake = fake_runner(monkeypatch, effect=make_image)
    prefix, build = tmp_path / "prefix", tmp_path / "build"
    build.mkdir()
    previous = installed(Layer("img.sqfs", "/TYKKY", OVERLAY), Layer("layer-1.sqfs", "/TYKKY", OVERLAY))
    manifest_module.write(previous, prefix)
    compacted = layers.compact(prefix, RUNTIME, Config(sqfs_options="-comp zstd", max_num_cpus=3), build)
    name = layers.layer_name(compacted.build_id)
    assert compacted == dataclasses.replace(previous, build_id=compacted.build_id,
                                            layers=(Layer(name, "/TYKKY", OVERLAY),))
    assert compacted.build_id != "old" and (prefix / name).read_text() == "image"
    assert (build / "merged" / "TYKKY" / ".tykky" / "build-id").read_text() == compacted.build_id + "\n"
    assert fake.argvs[-1] == ["/usr/bin/mksquashfs", str(build / "merged"), str(build / "compact.sqfs"),
                              "-noappend", "-no-progress", "-processors", "3", "-comp", "zstd"]
    assert manifest_module.load(prefix) == previous  # the caller writes the new manifest


def test_unused_layer_files_are_removed_and_named_ones_kept(tmp_path):
    for name in ("img.sqfs", "layer-1.sqfs", "layer-2.sqfs"):
        (tmp_path / name).write_text("")
    before = installed(*(Layer(n, "/TYKKY", OVERLAY) for n in ("img.sqfs", "layer-1.sqfs", "gone.sqfs")))
    after = installed(Layer("layer-2.sqfs", "/TYKKY", OVERLAY), Layer("layer-1.sqfs", "/TYKKY", OVERLAY))
    layers.remove_unused_layers(tmp_path, before, after)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer-1.sqfs", "layer-2.sqfs"]
