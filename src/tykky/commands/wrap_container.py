"""wrap-container: the programs of an existing container, used as a normal installation.

No image is built. The prefix gets the container (copied; a sandbox directory is linked, not
copied), the launcher and one entry per program. One container call lists every program, so
wrapping all of /usr/bin costs little more than copying the container.
"""
import dataclasses
import os
import posixpath
from pathlib import Path

from tykky import containers, deploy, layout, lock, modulefile, wrapping
from tykky.builddir import build_directory
from tykky.config import Config
from tykky.container_exec import BuildContainer
from tykky.errors import TykkyError
from tykky.image_build import make_manifest, new_build_id
from tykky.installation import launcher_interpreter
from tykky.probe import probe
from tykky.runtime import Runtime, find_runtime


def check_paths(config: Config) -> None:
    wrapping.check_wrapper_paths(config.wrapper_paths, "the container")
    relative = [path for path in config.wrapper_paths if not posixpath.isabs(path)]
    if relative:
        raise TykkyError(f"Paths to wrap must be absolute paths inside the container: {', '.join(relative)}. "
                         "For example -w /usr/bin or -w /opt/tool/bin/tool.")
    if config.environ_file and not os.path.isfile(config.environ_file):
        raise TykkyError(f"The environment file {config.environ_file} does not exist. Check the path.")


def place(image: Path, config: Config, stage: Path) -> str:
    """The container into the prefix; a sandbox directory is linked: copying it would put its
    thousands of files on the file system this is meant to spare."""
    if image.is_dir():
        name = Path(config.container_image).stem or "container"
        os.symlink(os.path.realpath(image), stage / name)
        return name
    return containers.place(image, config.container_src, stage / config.container_image, config)


def _build(config: Config, runtime: Runtime, build: Path) -> Path:
    """The finished prefix, staged in build; returns the staging directory."""
    image = containers.obtain(config.container_src, runtime, build)
    stage = build / "stage"
    stage.mkdir()
    staged = wrapping.stage_inputs(config, build)
    container = BuildContainer(runtime, image, config, None, build)
    paths = list(config.wrapper_paths)
    found = probe(container, paths, wrapping.python_candidates(paths))
    container_name = place(image, config, stage)
    manifest = make_manifest(config, container, found, mode="wrap-container", build_id=new_build_id(),
                             container_name=container_name, image_name="",
                             environ_file=wrapping.environ_file_name(staged))
    manifest = wrapping.finish_manifest(dataclasses.replace(manifest, layers=()))
    wrapping.record(stage, config, staged)
    # The prefix reads as a venv of the container's Python, which sees its own packages.
    layout.write_installation(stage, manifest, interpreter=launcher_interpreter(config), system_site=True)
    return stage


def new(config: Config, container_src: str) -> Path:
    """Wrap config.wrapper_paths of container_src into config.installation_prefix."""
    config = config.with_values(container_src=wrapping.absolute_or_remote(container_src))
    check_paths(config)
    prefix = Path(config.installation_prefix).absolute()
    modulefile.check(config)
    deploy.check_new_prefix(prefix)
    with lock.held(prefix, config.lock_timeout):
        deploy.check_new_prefix(prefix)  # another writer may have made it while this one waited
        runtime = find_runtime(config.singularity_executable_path)
        with build_directory(config.build_tmpdir_base, config.debug_keep_files) as build:
            stage = _build(config, runtime, build)
            deploy.deploy_new(stage, prefix)
        modulefile.write_for(config, prefix)
    return prefix
