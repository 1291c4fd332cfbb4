"""Wrapped programs under a real one-node Slurm (scripts/setup-slurm.sh) and real Open MPI.

Everything runs as the unprivileged test user through real srun and sbatch: that is how the
installations are used, and only then do user namespaces (one per container, or one shared by
the tasks of a step) come into play.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

from tests.helpers import SYSTEM_PYTHON, make_owned_dir, tool
from tests.integration.conftest import owned_file, site_config

MPI_IMAGE = os.environ.get("TYKKY_MPI_IMAGE", "/opt/tykky-ci/images/mpi.sif")
ALLREDUCE = ("from mpi4py import MPI; import mpi4py, os; c = MPI.COMM_WORLD; "
             "print(c.rank, c.size, c.allreduce(c.rank + 1), mpi4py.__file__, os.stat(mpi4py.__file__).st_dev)")
TASK_IDENTITY = ("import os, yaml; print(os.environ['SLURM_PROCID'], os.stat(yaml.__file__).st_dev, "
                 "os.readlink('/proc/self/ns/user'), os.environ['SLURM_JOB_ID'] + '.' + os.environ['SLURM_STEP_ID'])")
FINISHED_STATES = ("CANCELLED", "TIMEOUT", "COMPLETED", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY")


def slurm_ready() -> bool:
    if shutil.which("sinfo") is None or not Path(MPI_IMAGE).is_file():
        return False
    states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True).stdout.split()
    return any(state in ("idle", "mix", "alloc") for state in states)


if not slurm_ready() and not os.environ.get("CI"):  # in CI a missing cluster must fail loudly
    pytest.skip("no idle Slurm node or MPI image: run scripts/setup-slurm.sh", allow_module_level=True)

pytestmark = [pytest.mark.apptainer, pytest.mark.slurm]


@pytest.fixture(scope="module")
def home(user_dirs, test_user) -> Path:  # type: ignore[no-untyped-def]
    return make_owned_dir(user_dirs[test_user.name] / "slurm", test_user)


def system_site_installation(pyz, home: Path, user) -> Path:  # type: ignore[no-untyped-def]
    """A pip installation on the default base image that sees the host's packages (mpi4py)."""
    requirements = owned_file(home / "requirements.txt", "PyYAML==6.0.2\n", user)
    prefix = home / "inst"
    user.run(tool(pyz, "pip-containerize", "new", "--system-site-packages", "--prefix", str(prefix),
                  str(requirements)), cwd=home)
    return prefix


def wrapped_mpi_python(pyz, home: Path, user) -> Path:  # type: ignore[no-untyped-def]
    """The MPI image's own Python (with its Open MPI and mpi4py), isolated from the host."""
    prefix = home / "mpi-wrapped"
    user.run(tool(pyz, "wrap-container", "-w", "/usr/bin/python3", "--prefix", str(prefix), MPI_IMAGE), cwd=home)
    return prefix


@pytest.fixture(scope="module")
def inst(pyz, home, test_user) -> Path:  # type: ignore[no-untyped-def]
    return system_site_installation(pyz, home, test_user)


@pytest.fixture(scope="module")
def mpi_wrapped(pyz, home, test_user) -> Path:  # type: ignore[no-untyped-def]
    return wrapped_mpi_python(pyz, home, test_user)


@pytest.fixture(scope="module")
def unshared(inst, home, test_user) -> Path:  # type: ignore[no-untyped-def]
    """A copy of inst whose manifest turns step sharing off (what share_step_container: no writes)."""
    prefix = home / "inst-unshared"
    test_user.run(["cp", "-a", inst, prefix])
    manifest_path = prefix / "_tykky" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["share_step_container"] is True
    manifest["share_step_container"] = False
    owned_file(manifest_path, json.dumps(manifest), test_user)
    return prefix


def srun(user, home: Path, *argv, check: bool = True, env: Optional[Dict[str, str]] = None):  # type: ignore[no-untyped-def]
    return user.run(["srun", *map(str, argv)], cwd=home, check=check, env=env, timeout=600)


def lines(completed: subprocess.CompletedProcess) -> List[List[str]]:
    return [line.split() for line in completed.stdout.decode().splitlines() if line.strip()]


def batch_script(home: Path, name: str, body: str, user) -> Path:  # type: ignore[no-untyped-def]
    path = owned_file(home / name, "#!/bin/bash\nset -euo pipefail\n" + body, user)
    path.chmod(0o755)
    return path


# --- 1. srun and sbatch: variables, output, exit codes ----------------------------------------


def test_srun_tasks_see_their_variables_and_output_comes_back(inst, home, test_user):
    program = ("import os, sys, yaml; print(os.environ['SLURM_PROCID'], os.environ['SLURM_NTASKS'], "
               "os.environ['SLURM_JOB_ID'], sys.executable)")
    rows = lines(srun(test_user, home, "-n", "4", "--overcommit", inst / "bin" / "python", "-c", program))
    assert sorted(int(row[0]) for row in rows) == [0, 1, 2, 3]
    assert {row[1] for row in rows} == {"4"}
    assert len({row[2] for row in rows}) == 1
    assert {row[3] for row in rows} == {str(inst / "bin" / "python")}


def test_failing_task_fails_the_step(inst, home, test_user):
    program = ("import os, sys; rank = int(os.environ['SLURM_PROCID']); print('rank', rank); "
               "sys.exit(3 if rank == 1 else 0)")
    completed = srun(test_user, home, "-n", "3", "--overcommit", inst / "bin" / "python", "-c", program, check=False)
    assert completed.returncode == 3
    assert sorted(lines(completed)) == [["rank", "0"], ["rank", "1"], ["rank", "2"]]
    assert b"task 1: Exited with exit code 3" in completed.stderr


def test_batch_array_with_strict_shell(inst, home, test_user):
    python = inst / "bin" / "python"
    script = batch_script(home, "array.sh", f"""
{python} -c 'import os, yaml; print("batch", os.environ["SLURM_ARRAY_TASK_ID"], os.environ["SLURM_JOB_ID"])'
echo 'piped through' | {python} -c 'import sys; print("stdin", sys.stdin.read().strip())' | tr a-z A-Z
srun -n 2 {python} -c 'import os; print("task", os.environ["SLURM_ARRAY_TASK_ID"], os.environ["SLURM_PROCID"])' | sort
echo done
""", test_user)
    test_user.run(["sbatch", "--wait", "-n", "2", "-O", "--array=0-1", "-o", str(home / "array-%a.out"), script],
                  cwd=home, timeout=600)
    for index in ("0", "1"):
        output = (home / f"array-{index}.out").read_text().splitlines()
        assert output[0].startswith(f"batch {index} ")
        assert output[1:] == ["STDIN PIPED THROUGH", f"task {index} 0", f"task {index} 1", "done"]


def test_batch_script_stops_at_a_failing_wrapper(inst, home, test_user):
    python = inst / "bin" / "python"
    script = batch_script(home, "failing.sh", f"""
echo before
srun -n 2 {python} -c 'import os, sys; sys.exit(int(os.environ["SLURM_PROCID"]) * 4)'
echo after
""", test_user)
    output = home / "failing.out"
    completed = test_user.run(["sbatch", "--wait", "-n", "2", "-O", "-o", str(output), script], cwd=home,
                              check=False, timeout=600)
    assert completed.returncode == 4
    text = output.read_text()
    assert "before" in text and "after" not in text


# --- 2. scancel and time limits leave nothing running ------------------------------------------


SLEEPER = "import sys, time; print('ready', flush=True); time.sleep(900)  # {marker}"


def start_time(pid: int) -> Optional[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def job_processes(job_id: str) -> Dict[int, str]:
    """Every process Slurm tracks for the job on this node, with its start time."""
    listing = subprocess.run(["scontrol", "listpids", job_id], capture_output=True, text=True).stdout
    pids = [int(row.split()[0]) for row in listing.splitlines() if row.split() and row.split()[0].isdigit()]
    return {pid: start for pid in pids if (start := start_time(pid)) is not None}


def marked_processes(user, marker: str) -> Set[int]:  # type: ignore[no-untyped-def]
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == user.uid and \
                    marker.encode() in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def submit_sleepers(inst: Path, home: Path, user, name: str, *options: str) -> tuple:  # type: ignore[no-untyped-def]
    """A job running the wrapper in the batch step and in a 2-task step; returns (id, processes,
    marker). The marker, in every program's command line, names this run's workspace: the test
    user's sleepers of another run on this machine (a concurrent one) are not this job's."""
    python = inst / "bin" / "python"
    marker = f"{name}:{home}"
    program = SLEEPER.format(marker=marker)
    script = batch_script(home, f"{name}.sh", f"""
{python} -c "{program}" &
srun -n 2 {python} -c "{program}"
""", user)
    output = home / f"{name}.out"
    job_id = user.run(["sbatch", "--parsable", "-n", "2", "-O", "-o", str(output), *options, script],
                      cwd=home).stdout.decode().strip().split(";")[0]
    deadline = time.monotonic() + 300
    while not (output.exists() and output.read_text().count("ready") == 3):
        assert time.monotonic() < deadline, f"job {job_id} did not start its programs: {job_state(job_id)}"
        time.sleep(0.5)
    processes = job_processes(job_id)
    assert len(processes) >= 3
    return job_id, processes, marker


def job_state(job_id: str) -> str:
    shown = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True).stdout
    return next((item.split("=", 1)[1] for item in shown.split() if item.startswith("JobState=")), "")


def wait_for_state(job_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while (state := job_state(job_id)) not in FINISHED_STATES and time.monotonic() < deadline:
        time.sleep(1)
    return state


def leftovers(processes: Dict[int, str], user, marker: str, timeout: float = 60) -> Set[int]:  # type: ignore[no-untyped-def]
    """Processes of the job still alive once the node had time to clean up; empty is good.

    The job's are those Slurm listed for it and any of the user's that carry the job's marker
    (one that left Slurm's tracking, say by a double fork, is still the job's)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = {pid for pid, start in processes.items() if start_time(pid) == start}
        alive |= marked_processes(user, marker)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.5)


def describe(pids: Set[int]) -> str:
    return "; ".join(subprocess.run(["ps", "-o", "pid=,args=", "-p", str(pid)], capture_output=True,
                                    text=True).stdout.strip() for pid in sorted(pids))


@pytest.fixture(scope="module", autouse=True)
def time_limited_job(inst, home, test_user):  # type: ignore[no-untyped-def]
    """Started early: Slurm enforces a one-minute limit within about half a minute after it."""
    return submit_sleepers(inst, home, test_user, "tykky-time-limit", "--time=1")


def test_scancel_ends_every_program(inst, home, test_user):
    job_id, processes, marker = submit_sleepers(inst, home, test_user, "tykky-scancel")
    subprocess.run(["scancel", job_id], check=True)
    assert wait_for_state(job_id, 120) == "CANCELLED"
    remaining = leftovers(processes, test_user, marker)
    assert not remaining, describe(remaining)
    assert not list(Path("/dev/shm").glob(f"tykky-step-{test_user.uid}-{job_id}.*"))


# --- 3. environment leaked from a container into a job ----------------------------------------


@pytest.mark.parametrize("warm", ["1", "0"])
def test_job_submitted_from_inside_a_container(inst, home, test_user, warm):
    captured = test_user.run([inst / "bin" / "_debug_exec", "env", "-0"], env={"TYKKY_WARM_MOUNTS": warm},
                             cwd=home).stdout.decode()
    inside = dict(entry.split("=", 1) for entry in captured.split("\0") if "=" in entry)
    assert inside["APPTAINER_CONTAINER"] == str(inst / "container.sif")
    assert "APPTAINER_BIND" in inside and "SINGULARITY_NAME" in inside
    command = ["env", "-i", *(f"{key}={value}" for key, value in inside.items()), "/usr/bin/srun", "-n", "2",
               "--overcommit", inst / "bin" / "python", "-c", TASK_IDENTITY]
    completed = subprocess.run(test_user.command(command, {}), cwd=home, capture_output=True, timeout=300)
    assert completed.returncode == 0, completed.stderr.decode()
    assert sorted(row[0] for row in lines(completed)) == ["0", "1"]


# --- 4. MPI with the host's or the image's Open MPI -------------------------------------------


def allreduce(user, home: Path, python: Path) -> List[List[str]]:  # type: ignore[no-untyped-def]
    completed = srun(user, home, "--mpi=pmix", "-n", "2", python, "-c", ALLREDUCE)
    assert b"CMA" not in completed.stderr, completed.stderr.decode()
    assert b"PMIX ERROR" not in completed.stderr, completed.stderr.decode()
    rows = sorted(lines(completed))
    assert [row[:3] for row in rows] == [["0", "2", "3"], ["1", "2", "3"]]
    return rows


def test_mpi_with_the_hosts_mpi(inst, home, test_user):
    rows = allreduce(test_user, home, inst / "bin" / "python")
    host_module = subprocess.run([SYSTEM_PYTHON, "-c", "import mpi4py; print(mpi4py.__file__)"], check=True,
                                 capture_output=True, text=True).stdout.strip()
    assert {row[3] for row in rows} == {host_module}
    assert {row[4] for row in rows} == {str(os.stat(host_module).st_dev)}  # the host's file, bound in


def test_mpi_with_the_images_mpi(mpi_wrapped, home, test_user):
    manifest = json.loads((mpi_wrapped / "_tykky" / "manifest.json").read_text())
    assert manifest["binds"]["isolate"] is True
    rows = allreduce(test_user, home, mpi_wrapped / "bin" / "python3")
    host_devices = {str(os.stat(path).st_dev) for path in ("/usr", "/usr/lib/python3/dist-packages")}
    assert not {row[4] for row in rows} & host_devices  # read from the image, not from the host


# --- 5. many tasks per node share one container -----------------------------------------------


def test_many_tasks_share_one_container(inst, home, test_user):
    rows = lines(srun(test_user, home, "-n", "32", "--overcommit", inst / "bin" / "python", "-c", TASK_IDENTITY))
    assert sorted(int(row[0]) for row in rows) == list(range(32))
    assert len({row[1] for row in rows}) == 1  # one image mount
    assert len({row[2] for row in rows}) == 1  # one user namespace
    # the first task's bookkeeping is gone once the step is
    assert not Path(f"/dev/shm/tykky-step-{test_user.uid}-{rows[0][3]}").exists()


def test_staggered_tasks_all_succeed(inst, home, test_user):
    """Tasks that start while the first one is finishing join it, or start their own: none fails."""
    python = inst / "bin" / "python"
    launch = f"sleep 0.$((SLURM_PROCID * 3 % 10)); exec {python} -c \"{TASK_IDENTITY}\""
    rows = lines(srun(test_user, home, "-n", "8", "--overcommit", "bash", "-c", launch))
    assert sorted(int(row[0]) for row in rows) == list(range(8))


@pytest.fixture(scope="module")
def bare_runtime(pyz, home, test_user) -> Path:  # type: ignore[no-untyped-def]
    """Built with singularity_executable_path: apptainer, a bare name as site configurations have it."""
    site = site_config(test_user, home, "bare-runtime.yaml", singularity_executable_path="apptainer")
    requirements = owned_file(home / "requirements.txt", "PyYAML==6.0.2\n", test_user)
    prefix = home / "bare-runtime"
    test_user.run(tool(pyz, "pip-containerize", "new", "--prefix", str(prefix), str(requirements)), cwd=home,
                  env={"CW_GLOBAL_YAML": str(site)})
    assert json.loads((prefix / "_tykky" / "manifest.json").read_text())["runtime"]["path"] == "apptainer"
    return prefix


def test_tasks_share_one_container_with_a_runtime_given_by_bare_name(bare_runtime, home, test_user):
    rows = lines(srun(test_user, home, "-n", "3", "--overcommit", bare_runtime / "bin" / "python", "-c",
                      TASK_IDENTITY))
    assert sorted(int(row[0]) for row in rows) == [0, 1, 2]
    assert len({row[1] for row in rows}) == 1  # one image mount
    assert len({row[2] for row in rows}) == 1  # one user namespace


def test_sharing_turned_off_gives_each_task_its_container(unshared, home, test_user):
    rows = lines(srun(test_user, home, "-n", "3", "--overcommit", unshared / "bin" / "python", "-c", TASK_IDENTITY))
    assert len({row[1] for row in rows}) == 3
    assert len({row[2] for row in rows}) == 3
    completed = srun(test_user, home, "--mpi=pmix", "-n", "2", unshared / "bin" / "python", "-c", ALLREDUCE)
    assert b"CMA" in completed.stderr  # what sharing avoids: ranks in different user namespaces


# --- the time limit, submitted at the start of the module --------------------------------------


def test_time_limit_ends_every_program(time_limited_job, test_user):
    job_id, processes, marker = time_limited_job
    assert wait_for_state(job_id, 300) == "TIMEOUT"
    remaining = leftovers(processes, test_user, marker)
    assert not remaining, describe(remaining)
