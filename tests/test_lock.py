"""The writer lock: its record, staleness, flock and the O_EXCL fallback."""
import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tykky import lock
from tykky.errors import TykkyError
from tykky.lock import Holder

HOLD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from tykky import lock
    with lock.held(Path(sys.argv[1]), command="holder test"):
        sys.stdout.write("held\\n"); sys.stdout.flush()
        sys.stdin.readline()
""")


def holder(**changes) -> Holder:  # type: ignore[no-untyped-def]
    me = lock.this_process("me")
    values = {"host": me.host, "pid": me.pid, "start": me.start, "boot": me.boot, "since": me.since,
              "command": "x"}
    values.update(changes)
    return Holder(**values)


@pytest.fixture
def holding(tmp_path):  # type: ignore[no-untyped-def]
    """Another process holding the lock of tmp_path/inst; ends when the test ends."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "inst")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    assert process.stdout.readline() == b"held\n"
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture
def no_flock(monkeypatch):  # type: ignore[no-untyped-def]
    """A file system without working flock (Lustre without -o flock)."""
    def unsupported(_descriptor: int, _operation: int) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")
    monkeypatch.setattr(lock.fcntl, "flock", unsupported)


def test_the_record_reads_back():
    me = lock.this_process("pip-containerize update /p --post-install a.sh")
    assert lock.parse_holder(me.text()) == me
    assert me.pid == os.getpid() and me.start == lock.process_start(os.getpid())


@pytest.mark.parametrize("text", ["", "{", "[]", '{"host": "h"}', "not json\n"])
def test_an_unreadable_record_names_nobody(text):
    assert lock.parse_holder(text) is None


def test_long_commands_are_cut_and_kept_on_one_line():
    me = lock.this_process("a\nb " + "x" * 1000)
    assert "\n" not in me.command and len(me.command) < 400 and me.command.startswith("a b ")


def test_process_start_of_a_missing_process_is_none():
    process = subprocess.Popen(["true"])
    process.wait()
    assert lock.process_start(process.pid) is None
    assert lock.process_start(os.getpid()).isdigit()


def test_staleness():
    me = lock.this_process("me")
    alive = holder()
    assert not lock.is_stale(alive, me)
    assert not lock.is_stale(None, me)
    assert not lock.is_stale(holder(host="elsewhere", pid=999999999), me)  # never, on another host
    assert lock.is_stale(holder(pid=999999999), me, start_of=lambda pid: None)  # pid gone
    assert lock.is_stale(holder(start="1"), me)  # the pid is another process now
    assert lock.is_stale(holder(boot="another-boot"), me)  # rebooted since


def test_the_lock_file_is_beside_the_prefix_and_removed_after(tmp_path):
    prefix = tmp_path / "inst"
    with lock.held(prefix, command="test"):
        record = lock.parse_holder((tmp_path / ".inst.tykky-lock").read_text())
        assert record.pid == os.getpid() and record.command == "test"
    assert os.listdir(tmp_path) == []


def test_a_symlinked_path_takes_the_same_lock(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert lock.lock_path(tmp_path / "link" / "inst") == lock.lock_path(tmp_path / "real" / "inst")


def test_missing_parents_are_made_and_removed_again(tmp_path):
    prefix = tmp_path / "a" / "b" / "inst"
    with pytest.raises(RuntimeError):
        with lock.held(prefix):
            assert (tmp_path / "a" / "b" / ".inst.tykky-lock").is_file()
            raise RuntimeError("the build failed")
    assert os.listdir(tmp_path) == []


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    with lock.held(tmp_path / "inst"):
        with lock.held(tmp_path / "inst", timeout=0):
            pass
        assert (tmp_path / ".inst.tykky-lock").exists()


def test_a_held_lock_with_a_timeout_fails_naming_the_holder(tmp_path, holding):
    with pytest.raises(TykkyError) as caught:
        with lock.held(tmp_path / "inst", timeout=0):
            pytest.fail("the lock was taken twice")
    assert f"pid {holding.pid} on " in caught.value.message and "`holder test`" in caught.value.message
    assert "lock_timeout" in caught.value.message


def test_a_waiting_writer_says_for_whom_once_and_gets_the_lock(tmp_path, holding, monkeypatch):
    sleeps, said = [], []

    def release_the_holder(_seconds: float) -> None:
        sleeps.append(_seconds)
        if len(sleeps) == 3:
            holding.communicate(b"\n", timeout=60)
    monkeypatch.setattr(lock.time, "sleep", release_the_holder)
    monkeypatch.setattr(lock.log, "info", said.append)
    with lock.held(tmp_path / "inst"):
        record = lock.parse_holder((tmp_path / ".inst.tykky-lock").read_text())
        assert record.pid == os.getpid()
    assert len(said) == 1 and f"pid {holding.pid} on " in said[0] and "waiting" in said[0]


def test_a_killed_holder_leaves_no_lock(tmp_path, holding):
    holding.send_signal(signal.SIGKILL)
    holding.wait()
    with lock.held(tmp_path / "inst", timeout=0):
        pass


def test_without_flock_the_lock_is_the_file(tmp_path, no_flock):
    with lock.held(tmp_path / "inst"):
        with pytest.raises(FileExistsError):
            os.open(tmp_path / ".inst.tykky-lock", os.O_CREAT | os.O_EXCL)
        assert lock.parse_holder((tmp_path / ".inst.tykky-lock").read_text()).pid == os.getpid()
    assert os.listdir(tmp_path) == []


def test_without_flock_a_lock_of_a_gone_process_is_cleared(tmp_path, no_flock):
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / ".inst.tykky-lock").write_text(holder(pid=gone.pid, command="crashed").text())
    with lock.held(tmp_path / "inst", timeout=0):
        assert lock.parse_holder((tmp_path / ".inst.tykky-lock").read_text()).pid == os.getpid()
    assert os.listdir(tmp_path) == []


def test_without_flock_a_live_holder_is_waited_for(tmp_path, no_flock):
    alive = holder(pid=os.getppid(), start=lock.process_start(os.getppid()), command="running")
    (tmp_path / ".inst.tykky-lock").write_text(alive.text())
    with pytest.raises(TykkyError, match=f"pid {os.getppid()} on .*running"):
        with lock.held(tmp_path / "inst", timeout=0):
            pass
    assert (tmp_path / ".inst.tykky-lock").read_text() == alive.text()


def test_without_flock_a_lock_from_another_host_is_never_cleared(tmp_path, no_flock):
    (tmp_path / ".inst.tykky-lock").write_text(holder(host="node17", pid=999999999).text())
    with pytest.raises(TykkyError) as caught:
        with lock.held(tmp_path / "inst", timeout=0):
            pass
    assert "node17" in caught.value.message
    assert f"remove {tmp_path / '.inst.tykky-lock'}" in caught.value.message
    assert (tmp_path / ".inst.tykky-lock").exists()


def test_without_flock_an_unreadable_record_is_not_cleared(tmp_path, no_flock):
    (tmp_path / ".inst.tykky-lock").write_text("")
    with pytest.raises(TykkyError, match=f"not readable.*remove {tmp_path / '.inst.tykky-lock'}"):
        with lock.held(tmp_path / "inst", timeout=0):
            pass
    assert (tmp_path / ".inst.tykky-lock").exists()


def test_an_unwritable_directory_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes any directory")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    with pytest.raises(TykkyError, match="writer lock"):
        with lock.held(tmp_path / "ro" / "inst"):
            pass


def test_an_installation_in_a_directory_only_its_owner_may_not_write_is_locked_inside(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes any directory")
    (tmp_path / "ro" / "inst").mkdir(parents=True)
    (tmp_path / "ro").chmod(0o555)
    assert lock.lock_path(tmp_path / "ro" / "inst") == tmp_path / "ro" / "inst" / lock.SUFFIX
    assert lock.lock_path(tmp_path / "inst") == tmp_path / ".inst.tykky-lock"


def test_ctrl_c_while_waiting_stops_the_wait(tmp_path, holding):
    waiter_script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from tykky import interrupts, lock, log
        log.configure(2)
        interrupts.install_handlers()
        try:
            with lock.held(Path(sys.argv[1])):
                sys.exit(3)
        except interrupts.Interrupted as error:
            sys.exit(error.exit_code)
    """)
    waiter = subprocess.Popen([sys.executable, "-c", waiter_script, str(tmp_path / "inst")],
                              stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert b"is being written by" in waiter.stderr.readline()
        waiter.send_signal(signal.SIGINT)
        assert waiter.wait(timeout=60) == 130
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert lock.parse_holder((tmp_path / ".inst.tykky-lock").read_text()).pid == holding.pid


def test_changing_an_installation_that_is_not_there_locks_nothing(tmp_path):
    with lock.held(tmp_path / "a" / "missing", existing=True):
        assert os.listdir(tmp_path) == []
