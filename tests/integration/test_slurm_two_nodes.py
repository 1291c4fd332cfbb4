"""Wrapped programs on the two nodes of scripts/setup-slurm.sh's cluster (partition twonode).

The second node is a slurmd in its own network, UTS and mount namespace on this machine: its
own host name, address and /dev/shm, the same files. As in tests/integration/test_slurm.py,
everything runs as the unprivileged test user through real srun and sbatch.
"""
import os
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from tests.helpers import make_owned_dir
from tests.integration.test_slurm import (
    SLEEPER,
    batch_script,
    describe,
    leftovers,
    lines,
    start_time,
    system_site_installation,
    wait_for_state,
    wrapped_mpi_python,
)

PARTITION = "twonode"
HOST_NODE = os.uname().nodename.split(".")[0]
NODE_TASK = ("import os, socket, yaml; print(os.environ['SLURM_NODEID'], os.environ['SLURM_PROCID'], "
             "socket.gethostname(), os.stat(yaml.__file__).st_dev, os.readlink('/proc/self/ns/user'), "
             "os.environ['SLURM_JOB_ID'] + '.' + os.environ['SLURM_STEP_ID'])")
ALLREDUCE = ("from mpi4py import MPI; import socket; c = MPI.COMM_WORLD; "
             "print(c.rank, c.size, c.allreduce(c.rank + 1), socket.gethostname())")


def partition_nodes() -> List[str]:
    """The partition's nodes that are idle (or running jobs), by name."""
    listing = subprocess.run(["sinfo", "-h", "-N", "-p", PARTITION, "-o", "%N %t"], capture_output=True,
                             text=True).stdout.split("\n")
    return [row.split()[0] for row in listing if row.split()[1:] in (["idle"], ["mix"], ["alloc"])]


if len(partition_nodes()) < 2 and not os.environ.get("CI"):  # in CI a missing node must fail loudly
    pytest.skip("the twonode partition has no two idle nodes: run scripts/setup-slurm.sh",
                allow_module_level=True)

pytestmark = [pytest.mark.apptainer, pytest.mark.slurm]


@pytest.fixture(scope="module")
def second_node() -> str:
    others = [node for node in partition_nodes() if node != HOST_NODE]
    assert len(others) == 1, others
    return others[0]


@pytest.fixture(scope="module")
def mpi_environment(second_node) -> Dict[str, str]:
    """Open MPI's TCP transport between the nodes on the one range that joins them (the veth pair's)."""
    shown = subprocess.run(["scontrol", "-o", "show", "node", second_node], capture_output=True, text=True,
                           check=True).stdout.split()
    address = next(item.split("=", 1)[1] for item in shown if item.startswith("NodeAddr="))
    return {"OMPI_MCA_btl_tcp_if_include": address.rsplit(".", 1)[0] + ".0/24"}


def on_node(node: str, argv: Sequence[str]) -> List[str]:
    """argv run as root in the node's namespaces: the host's, or those of the node's slurmd."""
    if node == HOST_NODE:
        return list(argv)
    slurmd = Path(f"/run/slurmd-{node}.pid").read_text().strip()
    return ["nsenter", "-t", slurmd, "-m", "-u", "-n", *argv]


def step_directories(node: str, user, job_id: str) -> List[str]:  # type: ignore[no-untyped-def]
    """The launcher's arrival directories of the job left in the node's /dev/shm."""
    listing = subprocess.run(on_node(node, ["ls", "/dev/shm"]), capture_output=True, text=True, check=True)
    return [name for name in listing.stdout.split() if name.startswith(f"tykky-step-{user.uid}-{job_id}.")]


def node_processes(job_id: str, node: str) -> Dict[int, str]:
    """Every process Slurm tracks for the job on the node, with its start time."""
    listing = subprocess.run(["scontrol", "listpids", job_id, node], capture_output=True, text=True).stdout
    pids = [int(row.split()[0]) for row in listing.splitlines() if row.split() and row.split()[0].isdigit()]
    return {pid: start for pid in pids if (start := start_time(pid)) is not None}


@pytest.fixture(scope="module")
def home(user_dirs, test_user) -> Path:  # type: ignore[no-untyped-def]
    return make_owned_dir(user_dirs[test_user.name] / "slurm-two-nodes", test_user)


@pytest.fixture(scope="module")
def inst(pyz, home, test_user) -> Path:  # type: ignore[no-untyped-def]
    return system_site_installation(pyz, home, test_user)


@pytest.fixture(scope="module")
def mpi_wrapped(pyz, home, test_user) -> Path:  # type: ignore[no-untyped-def]
    return wrapped_mpi_python(pyz, home, test_user)


def srun(user, home: Path, *argv, env=None):  # type: ignore[no-untyped-def]
    return user.run(["srun", "-p", PARTITION, *map(str, argv)], cwd=home, env=env, timeout=600)


@pytest.mark.parametrize("tasks, per_node", [(4, [2, 2]), (5, [3, 2])])  # SLURM_STEP_TASKS_PER_NODE 2(x2), 3,2
def test_each_nodes_tasks_share_one_container(inst, home, test_user, second_node, tasks, per_node):
    rows = lines(srun(test_user, home, "-N", "2", "-n", str(tasks), "--overcommit", inst / "bin" / "python", "-c",
                      NODE_TASK))
    assert sorted(int(row[1]) for row in rows) == list(range(tasks))
    by_node = {node_id: [row for row in rows if row[0] == node_id] for node_id in ("0", "1")}
    assert {row[2] for row in by_node["0"]} == {HOST_NODE}
    assert {row[2] for row in by_node["1"]} == {second_node}
    assert [len(by_node["0"]), len(by_node["1"])] == per_node
    for node_rows in by_node.values():
        assert len({row[3] for row in node_rows}) == 1  # one image mount per node
        assert len({row[4] for row in node_rows}) == 1  # one user namespace per node
    assert by_node["0"][0][4] != by_node["1"][0][4]  # and each node has its own
    job_id = rows[0][5].split(".")[0]
    assert step_directories(HOST_NODE, test_user, job_id) == []
    assert step_directories(second_node, test_user, job_id) == []


@pytest.mark.parametrize("mpi", ["host", "image"])
def test_mpi_allreduce_across_two_nodes(inst, mpi_wrapped, home, test_user, second_node, mpi_environment, mpi):
    python = inst / "bin" / "python" if mpi == "host" else mpi_wrapped / "bin" / "python3"
    completed = srun(test_user, home, "--mpi=pmix", "-N", "2", "-n", "4", python, "-c", ALLREDUCE,
                     env=mpi_environment)
    assert b"PMIX ERROR" not in completed.stderr, completed.stderr.decode()
    assert b"CMA" not in completed.stderr, completed.stderr.decode()
    rows = sorted(lines(completed))
    assert [row[:3] for row in rows] == [[str(rank), "4", "10"] for rank in range(4)]
    assert sorted(row[3] for row in rows) == sorted([HOST_NODE, HOST_NODE, second_node, second_node])


def test_scancel_ends_everything_on_both_nodes(inst, home, test_user, second_node):
    marker = "tykky-two-node-scancel"
    python = inst / "bin" / "python"
    program = SLEEPER.format(marker=marker)
    script = batch_script(home, f"{marker}.sh", f"""
{python} -c "{program}" &
srun -N 2 -n 4 {python} -c "{program}"
""", test_user)
    output = home / f"{marker}.out"
    job_id = test_user.run(["sbatch", "--parsable", "-p", PARTITION, "-N", "2", "-n", "4", "-O", "-o", str(output),
                            script], cwd=home).stdout.decode().strip().split(";")[0]
    deadline = time.monotonic() + 300
    while not (output.exists() and output.read_text().count("ready") == 5):
        assert time.monotonic() < deadline, f"job {job_id} did not start its programs"
        time.sleep(0.5)
    on_host, on_second = node_processes(job_id, HOST_NODE), node_processes(job_id, second_node)
    assert len(on_host) >= 3 and len(on_second) >= 2  # the batch step's program and two tasks; two tasks
    subprocess.run(["scancel", job_id], check=True)
    assert wait_for_state(job_id, 120) == "CANCELLED"
    remaining = leftovers({**on_host, **on_second}, test_user, marker)  # one process table: both nodes
    assert not remaining, describe(remaining)
    assert step_directories(HOST_NODE, test_user, job_id) == []
    assert step_directories(second_node, test_user, job_id) == []
