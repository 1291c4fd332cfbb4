"""GPUs and vendor containers, with real Apptainer, as root and as the test user.

--gpu nv (and a user's APPTAINER_NV) make the runtime bind the host's driver libraries (here a
fake libnvidia-ml.so.1 in the ldconfig cache) into /.singularity.d/libs, where a wrapped program
loads them, cold and warm; a wrapped container keeps its own LD_LIBRARY_PATH and PATH entries; and
pip-containerize --container extends a vendor image with a venv on the image's own Python.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BASE_IMAGE, make_owned_dir, tool
from tests.integration.conftest import failed_build, owned_file, wait_for
from tests.integration.image_fixtures import (
    FAKE_DRIVER,
    FAKE_DRIVER_FUNCTION,
    VENDOR_DIR,
    VENDOR_HIDDEN_DIR,
    VENDOR_LIBRARY,
    VENDOR_PACKAGE,
    write_wheel,
)

pytestmark = pytest.mark.apptainer
COLD = {"TYKKY_WARM_MOUNTS": "0"}
# Prints the mount namespace first: it tells a warm launch (an instance's) from a cold one.
CALL_DRIVER = ("import ctypes, os; print(os.readlink('/proc/self/ns/mnt')); "
               f"print(ctypes.CDLL('{FAKE_DRIVER}').{FAKE_DRIVER_FUNCTION}())")
SHOW_PATHS = 'readlink /proc/self/ns/mnt; echo "$LD_LIBRARY_PATH"; echo "$PATH"'
RUNTIME_LIBRARY_DIR = "/.singularity.d/libs"


def wrap(who, pyz, home: Path, name: str, image, paths: str, *extra: str) -> Path:  # type: ignore[no-untyped-def]
    prefix = home / name
    if not prefix.exists():
        who.run(tool(pyz, "wrap-container", *extra, "-w", paths, "--prefix", str(prefix), str(image)), cwd=home)
    return prefix


@pytest.fixture(scope="session")
def gpu_wrapped(who, pyz, user_dirs, fake_gpu_driver):  # type: ignore[no-untyped-def]
    """The base image's python3, wrapped with --gpu nv."""
    return wrap(who, pyz, user_dirs[who.name], "wc-gpu", BASE_IMAGE, "/usr/bin/python3", "--gpu", "nv")


@pytest.fixture(scope="session")
def plain_wrapped(who, pyz, user_dirs, fake_gpu_driver):  # type: ignore[no-untyped-def]
    """The base image's python3, wrapped without a GPU setting."""
    return wrap(who, pyz, user_dirs[who.name], "wc-plain", BASE_IMAGE, "/usr/bin/python3")


@pytest.fixture(scope="session")
def vendor_wrapped(who, pyz, user_dirs, vendor_image):  # type: ignore[no-untyped-def]
    return wrap(who, pyz, user_dirs[who.name], "wc-vendor", vendor_image, f"{VENDOR_DIR}/bin,/usr/bin/python3")


@pytest.fixture(scope="session")
def vendor_pip(who, pyz, user_dirs, vendor_image, fake_gpu_driver):  # type: ignore[no-untyped-def]
    """The vendor image extended with a local wheel, on its own Python, with --gpu nv; the
    post-install step loads the fake driver (the build container has the GPUs too)."""
    home = user_dirs[who.name]
    prefix = home / "vendor-pip"
    inputs = make_owned_dir(home / "inputs-vendor-pip", who)
    wheel = write_wheel(inputs, "tykkyextra", "ORIGIN = 'the installation'\n")
    os.chown(wheel, who.uid, who.gid)
    requirements = owned_file(inputs / "requirements.txt", f"{wheel}\n", who)
    post = owned_file(inputs / "post.sh", f"python -c \"import ctypes; ctypes.CDLL('{FAKE_DRIVER}')\"\n"
                                          'touch "$VIRTUAL_ENV/gpu-at-build"\n', who)
    who.run(tool(pyz, "pip-containerize", "new", "--container", str(vendor_image), "--system-site-packages",
                 "--gpu", "nv", "--post-install", str(post), "--prefix", str(prefix), str(requirements)), cwd=home)
    return prefix


def instance_namespaces(who, prefix: Path) -> set:  # type: ignore[no-untyped-def]
    """The mount namespaces of who's running instances of prefix."""
    namespaces = set()
    for path in Path(f"/tmp/tykky-warm-{who.uid}").glob("*.json"):
        try:
            state = json.loads(path.read_text())
            if state.get("prefix") == str(prefix):
                namespaces.add(os.readlink(f"/proc/{state['pid']}/ns/mnt"))
        except (OSError, ValueError):
            pass  # an instance stopping meanwhile
    return namespaces


def run_lines(who, argv, env=None, cwd=None) -> list:  # type: ignore[no-untyped-def]
    completed = who.run(argv, env=env, cwd=cwd)
    assert completed.stderr == b""  # quiet: no runtime warnings (missing nvidia-smi and the like)
    return completed.stdout.decode().splitlines()


def warm_lines(who, argv, prefix: Path, env=None) -> list:  # type: ignore[no-untyped-def]
    """Output of argv (which prints its mount namespace first) once it runs in an instance of
    prefix: the first launch runs cold and starts one in the background. It runs in prefix, which
    an isolated instance shows: from a directory the instance does not show, launches run cold."""
    result = []

    def joined() -> bool:
        result[:] = run_lines(who, argv, env, cwd=prefix)
        return result[0] in instance_namespaces(who, prefix)

    assert wait_for(joined)
    return result[1:]


def test_gpu_setting_binds_the_driver_cold_and_warm(gpu_wrapped, who, pyz):
    python = gpu_wrapped / "bin" / "python3"
    assert json.loads((gpu_wrapped / "_tykky" / "manifest.json").read_text())["gpu"] == "nv"
    assert run_lines(who, [python, "-c", CALL_DRIVER], COLD)[1] == "42"
    assert warm_lines(who, [python, "-c", CALL_DRIVER], gpu_wrapped) == ["42"]


def test_without_gpu_setting_the_driver_is_absent(plain_wrapped, who):
    completed = who.run([plain_wrapped / "bin" / "python3", "-c", CALL_DRIVER], env=COLD, check=False)
    assert completed.returncode != 0 and FAKE_DRIVER.encode() in completed.stderr


def test_users_apptainer_nv_is_honoured_cold_and_warm(plain_wrapped, who):
    python = plain_wrapped / "bin" / "python3"
    asked = {"APPTAINER_NV": "1"}
    assert run_lines(who, [python, "-c", CALL_DRIVER], {**asked, **COLD})[1] == "42"
    assert warm_lines(who, [python, "-c", CALL_DRIVER], plain_wrapped, asked) == ["42"]
    # A launch without the variable does not join the instance started with it.
    completed = who.run([python, "-c", CALL_DRIVER], check=False)
    assert completed.returncode != 0 and FAKE_DRIVER.encode() in completed.stderr


def plain_exec(who, image) -> list:  # type: ignore[no-untyped-def]
    """LD_LIBRARY_PATH and PATH as a plain `apptainer exec` gives them."""
    return who.run(["apptainer", "-q", "exec", str(image), "sh", "-c", SHOW_PATHS]).stdout.decode().splitlines()[1:]


def entries(value: str) -> list:
    return [entry for entry in value.split(":") if entry]


@pytest.mark.parametrize("mode", ["cold", "warm"])
def test_wrapped_base_image_has_the_runtime_library_dir(plain_wrapped, who, mode):
    argv = [plain_wrapped / "bin" / "_debug_exec", "sh", "-c", SHOW_PATHS]
    lines = run_lines(who, argv, COLD)[1:] if mode == "cold" else warm_lines(who, argv, plain_wrapped)
    assert lines[0] == plain_exec(who, BASE_IMAGE)[0] == RUNTIME_LIBRARY_DIR


@pytest.mark.parametrize("mode", ["cold", "warm"])
def test_wrapped_container_keeps_its_own_paths(vendor_wrapped, vendor_image, who, mode):
    argv = [vendor_wrapped / "bin" / "_debug_exec", "sh", "-c", SHOW_PATHS]
    library_path, path = run_lines(who, argv, COLD)[1:] if mode == "cold" else warm_lines(who, argv, vendor_wrapped)
    plain_library_path, plain_path = plain_exec(who, vendor_image)
    # The installation's own entry (the wrapped directory's lib) is the image's: listed once.
    assert entries(plain_library_path) == [f"{VENDOR_DIR}/lib", RUNTIME_LIBRARY_DIR]
    assert library_path == f"{VENDOR_DIR}/lib:" + RUNTIME_LIBRARY_DIR
    assert len(set(entries(path))) == len(entries(path))
    assert [entry for entry in entries(path) if entry in entries(plain_path)] == entries(plain_path)
    assert run_lines(who, [vendor_wrapped / "bin" / "_debug_exec", "vendor-tool"]) == ["vendor tool"]
    program = f"import ctypes; print(ctypes.CDLL('{VENDOR_LIBRARY}').tykky_vendor_answer())"
    assert run_lines(who, [vendor_wrapped / "bin" / "python3", "-c", program]) == ["42"]


def test_a_vendor_path_under_a_mount_point_is_an_error_naming_it(vendor_image, who, pyz, user_dirs):
    """The test configuration's mount point /opt binds the host's /opt over the image's, where
    the image keeps one program: wrapping it says so, and leaving /opt out of mount_points wraps it."""
    home = user_dirs[who.name]
    stderr = failed_build("wrap-container", who, pyz, home, "wc-hidden", "-w", f"{VENDOR_HIDDEN_DIR},/opt/no-such",
                          str(vendor_image))
    assert (f"in the image, but the configuration's mount point /opt binds the host's /opt over them, in builds "
            f"and at every launch: {VENDOR_HIDDEN_DIR}. To wrap them, leave /opt out of mount_points (for example "
            "mount_points: [/home, /tmp] in a -y CONF.yaml") in stderr
    assert "These do not exist in the image: /opt/no-such." in stderr
    assert len(stderr.splitlines()) == 1
    without_opt = owned_file(home / "without-opt.yaml", "mount_points: [/home, /tmp]\n", who)
    prefix = wrap(who, pyz, home, "wc-unhidden", vendor_image, VENDOR_HIDDEN_DIR, "-y", str(without_opt))
    assert run_lines(who, [prefix / "bin" / "hidden-tool"]) == ["hidden tool"]


def test_extended_container_sees_its_packages_and_the_new_one(vendor_pip, who):
    program = (f"import sys, {VENDOR_PACKAGE}, tykkyextra; print(sys.prefix); print({VENDOR_PACKAGE}.ORIGIN); "
               f"print(tykkyextra.ORIGIN); print({VENDOR_PACKAGE}.__file__)")
    prefix, vendor_origin, extra_origin, vendor_file = run_lines(who, [vendor_pip / "bin" / "python", "-c", program])
    assert prefix == str(vendor_pip)
    assert (vendor_origin, extra_origin) == ("the vendor image", "the installation")
    assert vendor_file.startswith("/usr/local/lib/python3")  # where the image's own pip put it


def test_extended_container_image_holds_only_the_new_packages(vendor_pip):
    listing = subprocess.run(["unsquashfs", "-l", str(vendor_pip / "img.sqfs")], check=True,
                             stdout=subprocess.PIPE).stdout.decode().splitlines()
    assert any(line.endswith("/site-packages/tykkyextra/__init__.py") for line in listing)
    assert not any(VENDOR_PACKAGE in line or "dist-packages" in line for line in listing)
    assert not any(line.endswith("/os.py") for line in listing)  # the image's Python stays in the image


def test_extended_container_is_isolated_and_keeps_the_gpus(vendor_pip, vendor_image, who):
    manifest = json.loads((vendor_pip / "_tykky" / "manifest.json").read_text())
    assert manifest["binds"]["isolate"] is True and manifest["gpu"] == "nv"
    assert f"container_src: {vendor_image}" in (vendor_pip / "share" / "tykky" / "config.yaml").read_text()
    who.run([vendor_pip / "bin" / "_debug_exec", "test", "-f", "/TYKKY/venv/gpu-at-build"])
    python = vendor_pip / "bin" / "python"
    assert run_lines(who, [python, "-c", CALL_DRIVER], COLD)[1] == "42"
    assert warm_lines(who, [python, "-c", CALL_DRIVER], vendor_pip) == ["42"]
