"""Updates add image layers holding only what changed; compaction merges them."""
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import ROOT, make_owned_dir, tool
from tests.integration.conftest import build_pip, owned_file, site_config

pytestmark = pytest.mark.apptainer


def manifest_of(prefix):  # type: ignore[no-untyped-def]
    return json.loads((prefix / "_tykky" / "manifest.json").read_text())


def image_bytes(prefix) -> int:  # type: ignore[no-untyped-def]
    return sum((prefix / layer["image"]).stat().st_size for layer in manifest_of(prefix)["layers"])


@pytest.fixture(scope="session")
def layered(who, pyz, user_dirs):  # type: ignore[no-untyped-def]
    home = user_dirs[who.name]
    build_pip(who, pyz, home, "layered", "PyYAML==6.0.2\nsix==1.16.0\n")
    return home / "layered"


def update(who, pyz, prefix, home, name: str, requirements: str = "", post: str = ""):  # type: ignore[no-untyped-def]
    inputs = make_owned_dir(home / f"inputs-{name}", who)
    argv = tool(pyz, "pip-containerize", "update", str(prefix))
    if requirements:
        argv += ["-r", str(owned_file(inputs / "requirements.txt", requirements, who))]
    if post:
        argv += ["--post-install", str(owned_file(inputs / "post.sh", post, who))]
    return who.run(argv, cwd=home)


def test_update_adds_a_small_layer(layered, who, pyz, user_dirs):
    before_layers = manifest_of(layered)["layers"]
    before_bytes = image_bytes(layered)
    update(who, pyz, layered, user_dirs[who.name], "tomli", "tomli==2.0.1\n")
    after = manifest_of(layered)["layers"]
    assert after[: len(before_layers)] == before_layers
    assert len(after) == len(before_layers) + 1 and after[-1]["mount"] == "overlay"
    added = image_bytes(layered) - before_bytes
    assert 0 < added < 0.25 * before_bytes  # about the package, not a copy of the installation
    who.run([layered / "bin" / "python", "-c", "import tomli, yaml, six"])


def test_deletions_in_an_update_are_kept(layered, who, pyz, user_dirs):
    update(who, pyz, layered, user_dirs[who.name], "uninstall", post="python -m pip uninstall -y six\n")
    completed = who.run([layered / "bin" / "python", "-c", "import six"], check=False)
    assert completed.returncode != 0 and b"No module named 'six'" in completed.stderr
    who.run([layered / "bin" / "python", "-c", "import yaml, tomli"])


def test_compact_merges_layers_and_keeps_content(layered, who, pyz, user_dirs):
    update(who, pyz, layered, user_dirs[who.name], "extra", post="echo kept > $VIRTUAL_ENV/extra.txt\n")
    assert len(manifest_of(layered)["layers"]) > 1
    files_before = sorted(p.name for p in layered.glob("*.sqfs"))
    who.run(tool(pyz, "compact", str(layered)))
    layers = manifest_of(layered)["layers"]
    assert len(layers) == 1
    assert sorted(p.name for p in layered.glob("*.sqfs")) == [layers[0]["image"]]
    assert layers[0]["image"] not in files_before
    program = "import yaml, tomli; print(open('/TYKKY/venv/extra.txt').read())"
    completed = who.run([layered / "bin" / "python", "-c", program])
    assert completed.stdout == b"kept\n\n"
    assert who.run([layered / "bin" / "python", "-c", "import six"], check=False).returncode != 0


def test_updates_compact_past_max_layers(pyz, who, user_dirs):
    home = user_dirs[who.name]
    env = {"CW_GLOBAL_YAML": str(site_config(who, home, "two-layers.yaml", max_layers=2))}
    build_pip(who, pyz, home, "max-layers", "six==1.16.0\n", env=env)
    prefix = home / "max-layers"
    inputs = make_owned_dir(home / "inputs-max", who)
    for number in range(2):
        post = owned_file(inputs / f"post{number}.sh", f"echo {number} > $VIRTUAL_ENV/marker{number}\n", who)
        who.run(tool(pyz, "pip-containerize", "update", str(prefix), "--post-install", str(post)), cwd=home, env=env)
    assert len(manifest_of(prefix)["layers"]) == 1
    completed = who.run([prefix / "bin" / "python", "-c", "print(open('/TYKKY/venv/marker0').read() + "
                                                          "open('/TYKKY/venv/marker1').read())"])
    assert completed.stdout == b"0\n1\n\n"


def wrapped_tree(who, pyz, home: Path, name: str, *options: str) -> Path:  # type: ignore[no-untyped-def]
    """wrap-install of a one-script tree into home/name; returns the prefix."""
    source = make_owned_dir(home / f"{name}-source", who)
    make_owned_dir(source / "bin", who)
    owned_file(source / "bin" / "hello", "#!/bin/sh\necho hello\n", who).chmod(0o755)
    who.run(tool(pyz, "wrap-install", "-w", "bin", "--prefix", str(home / name), *options, str(source)), cwd=home)
    return home / name


def update_adding_a_file(who, pyz, prefix: Path, home: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    """An update whose post-install sees the installation's tree and adds added.txt to it; the
    temporary file it leaves behind is named in scratch.txt."""
    post = ('test -x "$TYKKY_INSTALLATION_PATH/bin/hello"\necho added > "$TYKKY_INSTALLATION_PATH/added.txt"\n'
            'mktemp > "$TYKKY_INSTALLATION_PATH/scratch.txt"\n')
    update(who, pyz, prefix, home, name, post=post)


def test_an_update_writes_into_its_layer_when_the_host_has_a_directory_at_the_installation_path(pyz, user_dirs):
    """A top-level host directory made at the installation path after `new` is no bind of the update."""
    home = user_dirs["root"]  # only root can make a top-level directory
    installation_path = Path(f"/tykky-test-host-dir-{os.getpid()}")
    config = owned_file(home / "host-dir.yaml", f"installation_path: {installation_path}\n", ROOT)
    prefix = wrapped_tree(ROOT, pyz, home, "host-dir", "-y", str(config))
    assert manifest_of(prefix)["layers"][0]["mount"] == "overlay"
    installation_path.mkdir()
    try:
        update_adding_a_file(ROOT, pyz, prefix, home, "host-dir")
        assert list(installation_path.iterdir()) == []
        assert len(manifest_of(prefix)["layers"]) == 2
        shown = ROOT.run([prefix / "bin" / "_debug_exec", "cat", f"{installation_path}/added.txt"])
        assert shown.stdout == b"added\n"
    finally:
        shutil.rmtree(installation_path)


def test_an_isolated_update_of_a_tree_under_tmp_sees_its_layers(who, pyz, user_dirs):
    """The runtime's own /tmp mount would show the host's DIR (still there) instead of the layers."""
    home = user_dirs[who.name]
    config = owned_file(home / "isolated-tmp.yaml", "isolate: yes\nmount_points: []\n", who)
    prefix = wrapped_tree(who, pyz, home, "isolated-tmp", "--mask", "-y", str(config))
    source = home / "isolated-tmp-source"
    assert str(source).startswith("/tmp/") and manifest_of(prefix)["layers"][0]["mount"] == "overlay"
    (source / "bin" / "hello").unlink()  # the host's DIR no longer holds what the image has
    update_adding_a_file(who, pyz, prefix, home, "isolated-tmp")
    assert not (source / "added.txt").exists()
    assert len(manifest_of(prefix)["layers"]) == 2
    assert who.run([prefix / "bin" / "_debug_exec", "cat", f"{source}/added.txt"]).stdout == b"added\n"
    assert who.run([prefix / "bin" / "hello"]).stdout == b"hello\n"
    # The image's /tmp is what launches see here: the update's temporary files stayed out of the layer.
    scratch = who.run([prefix / "bin" / "_debug_exec", "cat", f"{source}/scratch.txt"]).stdout.decode().strip()
    assert scratch and who.run([prefix / "bin" / "_debug_exec", "test", "-e", scratch], check=False).returncode == 1
