"""The launcher's Slurm step sharing (shim/launcher.py), without Slurm: its decisions on argv
and environment, and its in-container step script run by the host's /bin/sh."""
import os
import subprocess
import threading
import time

import pytest
from tykky_shim import contract

MANIFEST = contract.with_defaults({"share_step_container": True,
                                   "runtime": {"name": "apptainer", "path": "/usr/bin/apptainer", "version": "1.4.5"}})
STEP = {"SLURM_STEP_ID": "0", "SLURM_JOB_ID": "77", "SLURM_NODEID": "0", "SLURM_STEP_TASKS_PER_NODE": "4"}



@pytest.fixture
def in_step(launcher, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """As if slurmstepd had started this process; arrival directories go to tmp_path."""
    monkeypatch.setattr(launcher, "started_as_step_task", lambda: True)
    monkeypatch.setattr(launcher, "arrival_directory", lambda environ: str(tmp_path / "arrivals"))
    return launcher


@pytest.mark.parametrize("value, node, expected", [
    ("4", "0", 4), ("2(x3),1", "0", 2), ("2(x3),1", "2", 2), ("2(x3),1", "3", 1), ("16,8(x2)", "2", 8),
    ("", "0", 0), ("garbage", "0", 0), ("4", "9", 0),
])
def test_local_task_count(launcher, value, node, expected):
    assert launcher.local_task_count({"SLURM_STEP_TASKS_PER_NODE": value, "SLURM_NODEID": node}) == expected


def test_several_local_tasks_share_with_pmix_hash_store(in_step):
    environ = dict(STEP)
    flags, command = in_step.step_sharing(MANIFEST, "/usr/bin/apptainer", environ, ["python", "-c", "x"])
    assert flags == ["--sharens"]
    assert command[:2] == ["/bin/sh", "-c"] and command[4:] == ["start", command[5], "4", "python", "-c", "x"]
    assert environ["PMIX_MCA_gds"] == environ["APPTAINERENV_PMIX_MCA_gds"] == "hash"


def test_users_pmix_choice_is_kept(in_step):
    environ = dict(STEP, PMIX_MCA_gds="ds21")
    in_step.step_sharing(MANIFEST, "/usr/bin/apptainer", environ, ["python"])
    assert environ["PMIX_MCA_gds"] == "ds21" and "APPTAINERENV_PMIX_MCA_gds" not in environ


@pytest.mark.parametrize("change", [
    {"manifest": {"share_step_container": False}},
    {"manifest": {"share_step_container": None}},
    {"environ": {"SLURM_STEP_ID": None}},
    {"environ": {"SLURM_STEP_TASKS_PER_NODE": "1"}},
    {"runtime": "/opt/other/apptainer"},
    {"manifest": {"runtime": {"name": "apptainer", "path": "/usr/bin/apptainer", "version": "1.2.5"}}},
    {"manifest": {"runtime": {"name": "singularity", "path": "/usr/bin/apptainer", "version": "4.1.0"}}},
])
def test_no_sharing(in_step, change):
    manifest = {**MANIFEST, **change.get("manifest", {})}
    manifest = contract.with_defaults({key: value for key, value in manifest.items() if value is not None})
    environ = {key: value for key, value in {**STEP, **change.get("environ", {})}.items() if value is not None}
    before = dict(environ)
    flags, command = in_step.step_sharing(manifest, change.get("runtime", "/usr/bin/apptainer"), environ, ["python"])
    assert (flags, command, environ) == ([], ["python"], before)


@pytest.fixture
def runtime_on_path(monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """PATH leads the bare name apptainer to a link to the runtime's real file."""
    directory = tmp_path / "bin"
    directory.mkdir()
    runtime = directory / "apptainer-1.4.5"
    runtime.write_text("#!/bin/sh\n")
    runtime.chmod(0o755)
    os.symlink(runtime.name, directory / "apptainer")
    monkeypatch.setenv("PATH", f"/nonexistent:{directory}")
    return runtime


@pytest.mark.parametrize("used", ["apptainer", "apptainer-1.4.5"])
def test_a_runtime_recorded_by_bare_name_is_compared_by_what_it_leads_to(in_step, runtime_on_path, used):
    """singularity_executable_path: apptainer, as the site configurations may have it."""
    manifest = {**MANIFEST, "runtime": {"name": "apptainer", "path": "apptainer", "version": "1.4.5"}}
    assert in_step.runtime_executable(manifest) == str(runtime_on_path.parent / "apptainer")
    flags, _ = in_step.step_sharing(manifest, str(runtime_on_path.parent / used), dict(STEP), ["python"])
    assert flags == ["--sharens"]
    other = runtime_on_path.parent / "other"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    assert in_step.step_sharing(manifest, str(other), dict(STEP), ["python"]) == ([], ["python"])


def test_a_bare_runtime_name_is_looked_up_on_path_not_in_the_working_directory(launcher, runtime_on_path,
                                                                             tmp_path, monkeypatch):
    planted = tmp_path / "cwd" / "apptainer"
    planted.parent.mkdir()
    planted.write_text("#!/bin/sh\n")
    planted.chmod(0o755)
    monkeypatch.chdir(planted.parent)
    manifest = {"runtime": {"name": "apptainer", "path": "apptainer", "version": "1.4.5"}}
    assert launcher.runtime_executable(manifest) == str(runtime_on_path.parent / "apptainer")


def test_not_started_by_slurmstepd_means_no_sharing(launcher, monkeypatch):
    # A shell in a task may call wrappers one after another: Apptainer would key them all to it.
    monkeypatch.setattr(launcher, "started_as_step_task", lambda: False)
    assert launcher.step_sharing(MANIFEST, "/usr/bin/apptainer", dict(STEP), ["python"]) == ([], ["python"])


@pytest.mark.parametrize("version, expected", [("1.4.5", (1, 4, 5)), ("1.3.0-1.el8", (1, 3, 0)),
                                               ("1.3.0-rc.1", (1, 3, 0)), ("", (0,))])
def test_version_tuple(version, expected):
    assert contract.version_tuple(version) == expected


def run_step_script(launcher, directory, tasks, program, master, localid="0"):  # type: ignore[no-untyped-def]
    environ = {"PATH": os.environ["PATH"], "SLURM_LOCALID": localid}
    if master:
        environ["APPTAINER_SHARENS_MASTER"] = "1"
    argv = ["/bin/sh", "-c", launcher.STEP_SCRIPT, launcher.STEP_SCRIPT, "start", str(directory), str(tasks),
            "/bin/sh", "-c", program]
    return subprocess.Popen(argv, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_joining_task_marks_its_arrival_and_runs_the_program(launcher, tmp_path):
    process = run_step_script(launcher, tmp_path, 3, "echo joined; exit 7", master=False, localid="2")
    assert process.communicate(timeout=30)[0] == b"joined\n"
    assert process.returncode == 7
    assert os.listdir(tmp_path) == ["2"]


def test_first_task_waits_for_the_others_and_keeps_its_exit_code(launcher, tmp_path):
    directory = tmp_path / "arrivals"
    directory.mkdir()
    process = run_step_script(launcher, directory, 3, "echo first; exit 5", master=True)
    assert process.stdout.readline() == b"first\n"
    for localid in ("1", "2"):
        time.sleep(0.3)
        assert process.poll() is None  # still holding the container for the late ones
        (directory / localid).write_text("")
    assert process.wait(timeout=30) == 5
    assert not directory.exists()


def test_first_task_leads_its_process_group(launcher, tmp_path):
    """The runtime forwards signals to the group led by the command: it must be that leader."""
    process = run_step_script(launcher, tmp_path, 1, 'ps -o pgid= -p $$; ps -o pid= -p "$PPID"', master=True)
    group, parent = process.communicate(timeout=30)[0].split()
    assert group == parent


def test_signal_to_the_group_skips_the_wait(launcher, tmp_path):
    directory = tmp_path / "arrivals"
    directory.mkdir()
    process = run_step_script(launcher, directory, 5, "echo $$; sleep 60", master=True)
    program = int(process.stdout.readline())
    timer = threading.Timer(60, process.kill)
    timer.start()
    try:
        os.killpg(os.getpgid(program), 15)
        assert process.wait() == 143
    finally:
        timer.cancel()
    assert not directory.exists()


def test_arrival_directory_is_private_and_per_step(launcher, tmp_path):
    environ = dict(STEP, SLURM_JOB_ID=f"test{os.getpid()}")
    path = launcher.arrival_directory(environ)
    try:
        assert path == f"/dev/shm/tykky-step-{os.getuid()}-test{os.getpid()}.0"
        assert launcher.arrival_directory(environ) == path  # every task of the step gets the same
        assert os.stat(path).st_mode & 0o777 == 0o700
    finally:
        os.rmdir(path)
    os.symlink(tmp_path, path)
    try:
        assert launcher.arrival_directory(environ) is None  # planted by someone: no sharing
    finally:
        os.unlink(path)
