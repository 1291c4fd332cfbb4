"""A vendor-like image (its own Python package, library and %environment) and a fake GPU driver.

The vendor image is built by root from the base image and cached across sessions under
/var/tmp, keyed by its recipe. Its "post" step runs in the unpacked base image with the image's
own pip: a definition file's %post would need every capability, which root lacks in some CI
containers. The fake driver is a one-function libnvidia-ml.so.1 registered in the host's ldconfig
cache for the session, so that the runtime's --nv binds it as it would a real driver.
"""
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers import BASE_IMAGE

IMAGE_CACHE = Path("/var/tmp/tykky-test-images")
VENDOR_PACKAGE = "tykkyvendor"
VENDOR_LIBRARY = "libtykkyvendor.so"
FAKE_DRIVER = "libnvidia-ml.so.1"
FAKE_DRIVER_FUNCTION = "tykky_fake_nvml_answer"
# The vendor image keeps its files where no mount point of the test configuration covers them,
# as real vendor images do (/usr/local/cuda); one more program is under /opt, a mount point of
# that configuration, where the host's /opt hides it in an isolated container.
VENDOR_DIR = "/usr/local/vendor"
VENDOR_HIDDEN_DIR = "/opt/vendor/bin"
# The image's %environment, as a definition file would write it.
VENDOR_ENVIRONMENT = (f"#!/bin/sh\nexport PATH={VENDOR_DIR}/bin:$PATH\n"
                      f"export LD_LIBRARY_PATH={VENDOR_DIR}/lib:$LD_LIBRARY_PATH\n")
VENDOR_POST = f"""set -e
mkdir -p {VENDOR_DIR}/bin {VENDOR_DIR}/lib {VENDOR_HIDDEN_DIR}
printf '#!/bin/sh\\necho vendor tool\\n' > {VENDOR_DIR}/bin/vendor-tool
printf '#!/bin/sh\\necho hidden tool\\n' > {VENDOR_HIDDEN_DIR}/hidden-tool
chmod 755 {VENDOR_DIR}/bin/vendor-tool {VENDOR_HIDDEN_DIR}/hidden-tool
cp "$1/{VENDOR_LIBRARY}" {VENDOR_DIR}/lib/
python3 -m pip install -q --no-index --no-deps --break-system-packages --disable-pip-version-check \\
    "$1/{VENDOR_PACKAGE}-1.0-py3-none-any.whl"
"""


def write_wheel(directory: Path, name: str, text: str) -> Path:
    """A pure-Python wheel written by hand: nothing is downloaded to build it."""
    info = f"{name}-1.0.dist-info"
    files = {f"{name}/__init__.py": text,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tykky-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    wheel = directory / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, content in files.items():
            archive.writestr(path, content)
        archive.writestr(f"{info}/RECORD", "".join(f"{p},,\n" for p in files) + f"{info}/RECORD,,\n")
    return wheel


def shared_library(path: Path, function: str, soname: str) -> Path:
    source = f"int {function}(void) {{ return 42; }}\n"
    subprocess.run(["gcc", "-shared", "-fPIC", f"-Wl,-soname,{soname}", "-o", str(path), "-x", "c", "-"],
                   input=source.encode(), check=True)
    return path


def unpack_base_image(destination: Path) -> None:
    listing = subprocess.run(["apptainer", "sif", "list", BASE_IMAGE], check=True,
                             stdout=subprocess.PIPE).stdout.decode()
    partition = next(line.split("|")[0].strip() for line in listing.splitlines() if "FS (Squashfs" in line)
    rootfs = destination.parent / "rootfs.sqfs"
    with open(rootfs, "wb") as handle:
        subprocess.run(["apptainer", "sif", "dump", partition, BASE_IMAGE], check=True, stdout=handle)
    subprocess.run(["unsquashfs", "-no-progress", "-d", str(destination), str(rootfs)], check=True,
                   stdout=subprocess.DEVNULL)
    rootfs.unlink()


def build_vendor_image(image: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="build-", dir=image.parent))
    try:
        root = work / "root"
        unpack_base_image(root)
        files = root / "var" / "tykky-vendor-files"
        files.mkdir()
        write_wheel(files, VENDOR_PACKAGE, "ORIGIN = 'the vendor image'\n")
        shared_library(files / VENDOR_LIBRARY, "tykky_vendor_answer", VENDOR_LIBRARY)
        subprocess.run(["apptainer", "-q", "exec", "--writable", "--no-mount", "home,cwd", str(root),
                        "/bin/sh", "-c", VENDOR_POST, "post", "/var/tykky-vendor-files"], check=True)
        shutil.rmtree(files)
        (root / ".singularity.d" / "env" / "90-environment.sh").write_text(VENDOR_ENVIRONMENT)
        subprocess.run(["apptainer", "-q", "build", str(work / "vendor.sif"), str(root)], check=True,
                       stdout=subprocess.DEVNULL)
        (work / "vendor.sif").chmod(0o644)
        os.replace(work / "vendor.sif", image)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def vendor_image() -> Path:
    """A .sif with its own Python package (tykkyvendor), library (/usr/local/vendor/lib) and program
    (/usr/local/vendor/bin/vendor-tool), which its %environment puts on LD_LIBRARY_PATH and PATH,
    and a program under a mount point, /opt/vendor/bin/hidden-tool."""
    base = os.stat(BASE_IMAGE)
    recipe = f"{VENDOR_POST}{VENDOR_ENVIRONMENT}{base.st_size}:{base.st_mtime_ns}"
    image = IMAGE_CACHE / f"vendor-{hashlib.sha256(recipe.encode()).hexdigest()[:16]}.sif"
    IMAGE_CACHE.mkdir(mode=0o755, exist_ok=True)
    with open(IMAGE_CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not image.is_file():
            build_vendor_image(image)
    return image


def registered(library: str) -> bool:
    listing = subprocess.run(["ldconfig", "-p"], check=True, stdout=subprocess.PIPE).stdout.decode()
    return any(line.split()[0] == library for line in listing.splitlines()[1:] if line.strip())


def runtime_gpu_libraries() -> str:
    """The runtime's nvliblist.conf: the driver libraries --nv looks for in the ldconfig cache."""
    settings = subprocess.run(["apptainer", "buildcfg"], check=True, stdout=subprocess.PIPE).stdout.decode()
    directory = next(line.split("=", 1)[1] for line in settings.splitlines() if line.startswith("APPTAINER_CONFDIR="))
    return (Path(directory) / "nvliblist.conf").read_text()


@pytest.fixture(scope="session")
def fake_gpu_driver():  # type: ignore[no-untyped-def]
    """libnvidia-ml.so.1 with one function, in the host's ldconfig cache for this session."""
    if registered(FAKE_DRIVER):
        pytest.skip("the host has an NVIDIA driver library: a fake one would hide it")
    assert "libnvidia-ml.so" in runtime_gpu_libraries().split()
    directory = Path(tempfile.mkdtemp(prefix="tykky-fake-gpu-", dir="/var/tmp"))
    directory.chmod(0o755)
    listing = Path("/etc/ld.so.conf.d") / f"zz-{directory.name}.conf"
    try:
        shared_library(directory / FAKE_DRIVER, FAKE_DRIVER_FUNCTION, FAKE_DRIVER).chmod(0o755)
        listing.write_text(f"{directory}\n")
        subprocess.run(["ldconfig"], check=True)
        assert registered(FAKE_DRIVER)
        yield directory / FAKE_DRIVER
    finally:
        listing.unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
        subprocess.run(["ldconfig"], check=True)
