"""The clients the README promises, for real: a Jupyter kernel and dask-jobqueue's Slurm workers.

The installation has ipykernel, dask-jobqueue and termcolor, which none of the machine's base
Pythons has: a cell or a worker that imports it runs in the installation. The Jupyter side is
jupyter_client, the client every Jupyter front end uses, in a venv of its own on the host (the
version of the test extras), as a user's JupyterLab would be.
"""
import json
import os
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.helpers import SYSTEM_PYTHON, make_owned_dir
from tests.integration.conftest import build_pip, owned_file

pytestmark = pytest.mark.apptainer

REQUIREMENTS = "ipykernel==7.4.0\ndask-jobqueue==0.9.0\ntermcolor==3.3.0\n"
KERNEL = "tykky-test"
CELL = "import sys, termcolor; print(sys.prefix); print(termcolor.__file__)"
# Starts the kernel of a kernel spec the way Jupyter front ends do, runs one cell, shuts it down.
KERNEL_CLIENT = """
import json, sys
from jupyter_client.manager import KernelManager
manager = KernelManager(kernel_name=sys.argv[1])
manager.start_kernel()
client = manager.client()
client.start_channels()
output = []
def collect(message):
    if message["msg_type"] == "stream":
        output.append(message["content"]["text"])
try:
    client.wait_for_ready(timeout=300)
    reply = client.execute_interactive(sys.argv[2], timeout=300, output_hook=collect)
    print(json.dumps({"status": reply["content"]["status"], "output": "".join(output),
                      "argv": manager.kernel_spec.argv}))
finally:
    client.stop_channels()
    manager.shutdown_kernel(now=False)
"""
JOB_SCRIPT = ("from dask_jobqueue import SLURMCluster; "
              "print(SLURMCluster(cores=1, memory='1GB', scheduler_options={'host': '127.0.0.1'}).job_script())")
# One worker submitted with sbatch; the scheduler listens on loopback, where the worker (on the
# host's node) finds it.
DASK_JOB = """
from dask_jobqueue import SLURMCluster
from distributed import Client
def where():
    import os, sys, termcolor
    return [sys.prefix, os.environ["SLURM_JOB_ID"]]
with SLURMCluster(cores=1, memory="1GB", processes=1, walltime="00:05:00",
                  scheduler_options={"host": "127.0.0.1"}) as cluster:
    cluster.scale(1)
    with Client(cluster) as client:
        client.wait_for_workers(1, timeout=300)
        print(" ".join(client.submit(where).result()))
"""


@pytest.fixture(scope="session")
def clients(who, pyz, user_dirs) -> Path:  # type: ignore[no-untyped-def]
    """A pip installation with ipykernel, dask-jobqueue and termcolor, owned by who."""
    home = user_dirs[who.name]
    prefix = home / "clients"
    if not prefix.exists():
        build_pip(who, pyz, home, "clients", REQUIREMENTS)
    return prefix


@pytest.fixture(scope="session")
def jupyter_python(who, user_dirs) -> Path:  # type: ignore[no-untyped-def]
    """A host venv of who with jupyter_client (the tests' own venv may sit where who cannot read)."""
    venv = user_dirs[who.name] / "jupyter-client"
    if not venv.exists():
        who.run([SYSTEM_PYTHON, "-m", "venv", str(venv)])
        who.run([venv / "bin" / "pip", "install", "-q", f"jupyter_client=={version('jupyter_client')}"])
    return venv / "bin" / "python"


def test_jupyter_kernel_runs_in_the_installation(clients, jupyter_python, who, user_dirs):
    home = user_dirs[who.name] / "jupyter"
    shutil.rmtree(home, ignore_errors=True)
    home = make_owned_dir(home, who)
    # Not a temporary HOME: in a container started by root, Apptainer sets HOME to /root.
    environment = {"JUPYTER_DATA_DIR": str(home / "data"), "IPYTHONDIR": str(home / "ipython")}
    who.run([clients / "bin" / "python", "-m", "ipykernel", "install", "--user", "--name", KERNEL],
            env=environment, cwd=home)
    spec = json.loads((home / "data" / "kernels" / KERNEL / "kernel.json").read_text())
    assert spec["argv"][0] == str(clients / "bin" / "python")  # the wrapper, a path that exists on the host
    driver = owned_file(home / "kernel_client.py", KERNEL_CLIENT, who)
    completed = who.run([jupyter_python, driver, KERNEL, CELL], env=environment, cwd=home)
    result = json.loads(completed.stdout.decode().splitlines()[-1])
    assert result["status"] == "ok"
    assert result["argv"][0] == str(clients / "bin" / "python")
    prefix, module = result["output"].split()
    assert prefix == str(clients)
    assert module.startswith(f"{clients}/")


def test_dask_jobqueue_job_script_runs_the_wrapper(clients, who, user_dirs):
    completed = who.run([clients / "bin" / "python", "-c", JOB_SCRIPT], cwd=user_dirs[who.name])
    worker = [line for line in completed.stdout.decode().splitlines() if "distributed.cli.dask_worker" in line]
    assert len(worker) == 1
    assert worker[0].split()[0] == str(clients / "bin" / "python")


def slurm_ready() -> bool:
    if shutil.which("sinfo") is None:
        return False
    states = subprocess.run(["sinfo", "-h", "-p", "tykky", "-o", "%t"], capture_output=True, text=True).stdout
    return any(state in ("idle", "mix", "alloc") for state in states.split())


@pytest.mark.slurm
@pytest.mark.skipif(not slurm_ready() and not os.environ.get("CI"),  # in CI a missing cluster must fail
                    reason="no idle Slurm node: run scripts/setup-slurm.sh")
def test_dask_worker_runs_as_a_slurm_job(clients, who, user_dirs):
    home = user_dirs[who.name]
    script = owned_file(home / "dask_job.py", DASK_JOB, who)
    completed = who.run([clients / "bin" / "python", script], cwd=home, timeout=600)
    prefix, job_id = completed.stdout.decode().split()[-2:]
    assert prefix == str(clients)
    assert job_id.isdigit()
