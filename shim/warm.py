"""Warm mounts: programs join a running container instance instead of mounting anew.

A cold launch pays a fresh squashfuse mount every time. Here the first launch of an
installation on a node starts an instance (per user, node, image and set of binds); later
launches enter its namespaces directly (os.setns on Python >= 3.12, else nsenter), chroot to
its root and exec the program, which then is the launcher's own process: signals, the
terminal and the exit code need no forwarding.

State lives in /tmp/tykky-warm-<uid>/ (node-local): <name>.json describes the instance,
<name>.usage is flock'ed shared by every program running in it (the descriptor is inherited
through exec and released when the program and its children are gone), <name>.start
serialises starting, <name>.failed holds the prefix and why the last start failed (launches
stay cold without retrying for FAILURE_PAUSE seconds). A reaper process started with the
instance stops it once nobody has held the usage lock for the idle timeout, or as soon as it is
unused after an update replaced it. A launch that finds the instance's mounts broken (a FUSE
process serving an image is gone, its root cannot be read) goes cold and has a detached process
stop the instance and remove its state, so that the next launch starts a new one.

Stdlib only, Python >= 3.6. Any failure raises WarmUnavailable: the caller launches cold.
"""
import fcntl
import os
import time

STATE_ROOT = "/tmp/tykky-warm-%d"
FAILURE_PAUSE = 600  # seconds without new attempts after an instance failed to start
RUNTIME_DEFAULT_PATH = "/bin:/usr/bin:/sbin:/usr/sbin:/usr/local/bin:/usr/local/sbin"


class WarmUnavailable(Exception):
    pass


def state_directory():
    """This user's state directory, refused unless it is a private directory of the user."""
    path = os.environ.get("TYKKY_WARM_DIR") or STATE_ROOT % os.getuid()
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as error:
        raise WarmUnavailable("cannot create %s: %s" % (path, error)) from None
    info = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise WarmUnavailable("%s is not a private directory of this user" % path)
    return path


def contract():
    """The manifest contract, by the one name it has in this process (see launcher.load_module)."""
    try:
        import tykky_contract
        return tykky_contract
    except ImportError:
        from tykky_shim import contract as shim_contract
        return shim_contract


def instance_name(prefix, manifest, binds, overlays, flags=(), environ=None):
    """One instance per installation, build, binds, overlays, runtime flags (--nv, ...) and the
    caller's GPU variables (the runtime's variables that change how an instance starts): a launch
    never joins an instance started without the GPUs it asks for."""
    requests = ["%s_%s" % (family, name) for family in contract().RUNTIME_FAMILIES for name in contract().GPU_REQUESTS]
    started_with = ["%s=%s" % (key, (environ or {})[key]) for key in requests if key in (environ or {})]
    key = "\0".join([os.path.realpath(prefix), manifest["build_id"]] + list(binds) + list(overlays)
                     + list(flags) + started_with)
    try:
        from _sha1 import sha1  # built in; hashlib loads OpenSSL, milliseconds per launch
    except ImportError:
        from hashlib import sha1
    return "tykky-" + sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def process_start_time(pid):
    """Start time of a process, to tell it from a later process with the same pid."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def read_state(path, read_json=None):
    """The instance's state if the instance still runs. read_json: the launcher passes its own
    reader, because importing json (and with it re) costs a warm launch several milliseconds."""
    if read_json is None:
        import json

        def read_json(name):
            with open(name) as handle:
                return json.load(handle)
    try:
        state = read_json(path)
    except (OSError, ValueError, StopIteration):
        return None
    if process_start_time(state.get("pid", -1)) != state.get("start_time"):
        return None
    return state


def write_state(path, state):
    import json

    temporary = "%s.%d.tmp" % (path, os.getpid())
    with open(temporary, "w") as handle:
        json.dump(state, handle)
    os.replace(temporary, path)


def lock(path, mode):
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(descriptor, mode)
    return descriptor


def run_quietly(argv, environ, capture=False):
    import subprocess

    completed = subprocess.run(argv, env=environ, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    if completed.returncode != 0:
        raise WarmUnavailable("%s failed: %s" % (" ".join(argv[:4]), completed.stderr.decode(errors="replace")))
    return completed.stdout


def instance_pid(runtime, name, environ):
    import json

    listing = json.loads(run_quietly([runtime, "instance", "list", "--json", name], environ, capture=True))
    for entry in listing.get("instances", []):
        if entry.get("instance") == name:
            return int(entry["pid"])
    raise WarmUnavailable("instance %s is not listed after starting" % name)


def userns_flags():
    """A setuid runtime would start the instance in no namespace of this user, which only root
    can enter, and refuses to join one started with --userns unless asked again: non-root
    starts and probes pass --userns (the unprivileged runtime implies it)."""
    return ["--userns"] if os.geteuid() != 0 else []


def container_variables(runtime, name, environ):
    """What the runtime itself sets inside (its markers, the image's own environment)."""
    probe = {"PATH": "/usr/bin:/bin", "HOME": environ.get("HOME", "/")}
    output = run_quietly([runtime, "-q", "exec"] + userns_flags() + ["instance://" + name, "env", "-0"], probe,
                         capture=True)
    variables = {}
    for entry in output.decode("utf-8", "surrogateescape").split("\0"):
        key, _, value = entry.partition("=")
        if key and key not in ("HOME", "PWD", "SHLVL", "_", "USER_PATH", "OLDPWD", "APPTAINER_INSTANCE",
                               "SINGULARITY_INSTANCE"):
            variables[key] = value
    return variables


def fuse_daemons(pid):
    """[pid, start time] of the FUSE processes serving the instance's images (squashfuse where
    the runtime mounts without privileges): children of the runtime's instance process. One that
    crashed or was killed leaves its mount broken (ENOTCONN), which a launch must not join."""
    parent = parent_pid(pid)
    daemons = []
    if parent <= 1:
        return daemons  # orphans of every kind are init's children: none is known to be ours
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % entry) as handle:
                command, _, fields = handle.read().rpartition(")")
        except OSError:
            continue  # ended meanwhile
        fields = fields.split()
        if fields[1] == str(parent) and "fuse" in command:
            daemons.append([int(entry), fields[19]])
    return daemons


def parent_pid(pid):
    with open("/proc/%d/stat" % pid) as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def start_instance(runtime, container, name, flags, environ, manifest, prefix, state_path):
    # Instances get their own PID namespace and with it a /proc in which a process joining from
    # outside has no /proc/self. The host's /proc in its place keeps /proc/self right for all.
    environ = dict(environ)
    for variable in ("APPTAINER_BIND", "SINGULARITY_BIND"):
        environ[variable] = ",".join(b for b in (environ.get(variable, ""), "/proc") if b)
    argv = [runtime, "-q", "instance", "start", "--no-mount", "proc"] + userns_flags() + flags + [container, name]
    try:
        run_quietly(argv, environ)
    except WarmUnavailable:
        # A dead instance of the same name may still be registered: clear it once and retry.
        subprocess_stop(runtime, name, environ)
        run_quietly(argv, environ)
    try:
        pid = instance_pid(runtime, name, environ)
        own_user_namespace = os.readlink("/proc/%d/ns/user" % pid) != os.readlink("/proc/self/ns/user")
        state = {"pid": pid, "start_time": process_start_time(pid), "name": name, "prefix": prefix,
                 "build_id": manifest["build_id"], "user_namespace": own_user_namespace,
                 "runtime": runtime, "variables": container_variables(runtime, name, environ),
                 "fuse_daemons": fuse_daemons(pid)}
        write_state(state_path, state)
    except Exception:
        # Nobody could use an instance without its state: it must not stay running.
        subprocess_stop(runtime, name, environ)
        raise
    return state


def subprocess_stop(runtime, name, environ):
    import subprocess

    subprocess.run([runtime, "-q", "instance", "stop", name], env=environ, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def in_background(action, request):
    """Run serve ("start") or forget from a detached process, which may stay on as a reaper.

    The launch that finds no instance goes cold at once rather than wait: starting an instance
    and reading its environment takes longer than one cold launch. The process is a fork of
    this one, not a new Python: that would open (and compile) this module's file again, a
    metadata request on the filesystem that holds the installation."""
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            # From "/": a reaper (and the instance it starts) must keep no filesystem of the
            # caller busy, such as a job's scratch directory that is unmounted when the job ends.
            os.chdir("/")
            if os.fork() == 0:
                detach_descriptors()
                (serve if action == "start" else forget)(request)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def detach_descriptors():
    """The launcher's terminal, pipes and locks are not the reaper's to hold."""
    null = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(null, descriptor)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))


def serve(request):
    """In the detached process: start the instance unless another process did, then reap it."""
    base = os.path.join(state_directory(), request["name"])
    starting = lock(base + ".start", fcntl.LOCK_EX)
    try:
        if read_state(base + ".json") is not None:
            return
        try:
            start_instance(request["runtime"], request["container"], request["name"], request["flags"],
                           request["environ"], request["manifest"], request["prefix"], base + ".json")
        except Exception as error:  # noqa: BLE001 - any failure: launches stay cold for a while
            with open(base + ".failed", "w") as handle:
                handle.write("%s\n%s\n" % (request["prefix"], error))
            return
        if os.path.exists(base + ".failed"):
            os.unlink(base + ".failed")
    finally:
        os.close(starting)
    reap(base + ".json", request["manifest"].get("warm", {}).get("idle_timeout", 300))


def forget(request):
    """In the detached process: stop a broken instance and remove its state, so that the next
    launch starts a new one; unless another instance of the name took its place meanwhile."""
    base = os.path.join(state_directory(), request["name"])
    starting = lock(base + ".start", fcntl.LOCK_EX)
    try:
        state = read_state(base + ".json")
        if state is None or state["start_time"] != request["start_time"]:
            return
        os.unlink(base + ".json")
        subprocess_stop(state["runtime"], state["name"], dict(os.environ))
    finally:
        os.close(starting)


def existing_instance(name, read_json=None):
    """(state, usage descriptor) of the running instance, or (None, None)."""
    base = os.path.join(state_directory(), name)
    usage = lock(base + ".usage", fcntl.LOCK_SH)
    state = read_state(base + ".json", read_json)
    if state is None:
        os.close(usage)
        return None, None
    return state, usage


def bind_destinations(binds):
    return ",".join(spec.split(":")[1] if ":" in spec else spec for spec in binds)


def joined_environment(environ, state, binds):
    """The program's environment as a cold `apptainer exec` would build it."""
    result = {}
    for key, value in environ.items():
        if key.startswith(("APPTAINERENV_", "SINGULARITYENV_")):
            continue
        if key.startswith(("APPTAINER_", "SINGULARITY_")) and key.endswith(("_BIND",)):
            continue
        result[key] = value
    result.update(state.get("variables", {}))
    result["APPTAINER_BIND"] = result["SINGULARITY_BIND"] = bind_destinations(binds)
    # What the runtime records of the caller's PATH, in its own format.
    result["USER_PATH"] = os.environ.get("PATH", "") + ":" + RUNTIME_DEFAULT_PATH
    for key, value in environ.items():
        if key.startswith("APPTAINERENV_"):
            result[key[len("APPTAINERENV_"):]] = value
    # As the runtime does on a cold launch: a value passed in gets its library directory last;
    # without one the program keeps the instance's own value, which already ends with it.
    if environ.get("APPTAINERENV_LD_LIBRARY_PATH"):
        result["LD_LIBRARY_PATH"] += ":" + contract().RUNTIME_LIBRARY_DIR
    return result


def working_directory(environ):
    try:
        return os.getcwd()
    except OSError:
        return environ.get("HOME", "/")


class InstanceBroken(WarmUnavailable):
    """The instance runs, but its mounts do not work: it is to be stopped and forgotten."""


def open_root(state):
    """A descriptor of the instance's root, once the instance is known to be usable.

    Every warm launch pays this, so it is cheap: a read of procfs per FUSE process the instance
    had at its start, and the open of its root that entering it needs anyway."""
    for pid, start_time in state.get("fuse_daemons", ()):
        if process_start_time(pid) != start_time:
            raise InstanceBroken("the process serving one of its images (pid %d) is gone" % pid)
    try:
        return os.open("/proc/%d/root" % state["pid"], os.O_RDONLY)
    except OSError as error:
        import errno

        if error.errno in (errno.ENOTCONN, errno.EIO, errno.ESTALE):
            raise InstanceBroken("its root cannot be read: %s" % error.strerror) from None
        raise WarmUnavailable("cannot open the instance's root: %s" % error.strerror) from None


def join(state, command, environ):
    """Enter the instance and exec command; returns only if entering failed, before committing:
    every check and every descriptor comes before the first namespace is entered."""
    if not state["user_namespace"] and os.geteuid() != 0:
        raise WarmUnavailable("the instance runs in no user namespace of this user: only root can enter it")
    pid = state["pid"]
    cwd = working_directory(environ)
    root = open_root(state)
    if not os.path.isdir("/proc/%d/root%s" % (pid, cwd)):
        # A cold launch has the runtime mount the working directory; an instance has only
        # what it was started with, so the program would find itself elsewhere.
        os.close(root)
        raise WarmUnavailable("the working directory %s is not visible in the instance" % cwd)
    if hasattr(os, "setns"):
        namespaces = (["user"] if state["user_namespace"] else []) + ["mnt"]
        descriptors = [os.open("/proc/%d/ns/%s" % (pid, namespace), os.O_RDONLY) for namespace in namespaces]
        for descriptor in descriptors:
            os.setns(descriptor, 0)
            os.close(descriptor)
        os.fchdir(root)
        os.chroot(".")
        os.chdir(cwd if os.path.isdir(cwd) else "/")
        os.execvpe(command[0], command, environ)
    os.close(root)
    nsenter = next((p for p in ("/usr/bin/nsenter", "/bin/nsenter") if os.access(p, os.X_OK)), None)
    if nsenter is None:
        raise WarmUnavailable("nsenter is not installed")
    flags = ["-U", "--preserve-credentials"] if state["user_namespace"] else []
    argv = [nsenter, "-t", str(pid)] + flags + ["-m", "-r", "--wdns=" + cwd, "--"] + command
    os.execve(nsenter, argv, environ)


def failure_record(name):
    """(prefix, why) of a start of the instance that failed within FAILURE_PAUSE seconds, or None.

    Where instances cannot start (no user namespaces, site policy) each launch would otherwise
    have a detached process try again, and fail again, next to every program."""
    path = os.path.join(state_directory(), name + ".failed")
    try:
        if time.time() - os.stat(path).st_mtime < FAILURE_PAUSE:
            with open(path) as handle:
                prefix, _, why = handle.read().partition("\n")
            return prefix, why.strip() or "unknown error"
    except OSError:
        pass
    return None


def recent_failure(name):
    """Why starting the instance failed lately, or ""."""
    record = failure_record(name)
    return record[1] if record else ""


def warm_exec(runtime, container, flags, environ, manifest, prefix, binds, overlays, command, read_json=None):
    """Run command in the warm instance; raises WarmUnavailable to ask for a cold launch."""
    name = instance_name(prefix, manifest, binds, overlays, flags, environ)
    state, usage = existing_instance(name, read_json)
    if state is None:
        failed = recent_failure(name)
        if failed:
            raise WarmUnavailable("starting an instance failed lately: %s" % failed)
        in_background("start", {"runtime": runtime, "container": container, "flags": flags, "environ": environ,
                                "manifest": {"build_id": manifest["build_id"], "warm": manifest.get("warm", {})},
                                "prefix": prefix, "name": name})
        raise WarmUnavailable("no instance yet: starting one for the next launches")
    os.set_inheritable(usage, True)
    try:
        join(state, command, joined_environment(environ, state, binds))
    except InstanceBroken as broken:
        in_background("forget", {"name": name, "start_time": state["start_time"]})
        raise WarmUnavailable("instance %s is broken (%s): stopping it" % (name, broken)) from None
    finally:
        # Reached only when joining failed: the cold launch must not hold the instance in use.
        os.close(usage)


def reap(state_path, idle_timeout):
    """Stop the instance once idle for idle_timeout seconds, or unused after an update."""
    state = read_state(state_path)
    if state is None:
        return
    usage_path = state_path[: -len(".json")] + ".usage"
    interval = max(0.5, min(10.0, idle_timeout / 4.0))
    idle_since = None
    manifest = ManifestWatch(state)
    while True:
        time.sleep(interval)
        # Stopped meanwhile, or another instance of the same name replaced this one's state
        # file: reap only our own (and touch the installation no more).
        if (read_state(state_path) or {}).get("start_time") != state["start_time"]:
            return
        descriptor = os.open(usage_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            idle_since = None
            os.close(descriptor)
            continue
        idle_since = idle_since or time.time()
        if manifest.replaced() or time.time() - idle_since >= idle_timeout:
            os.unlink(state_path)
            subprocess_stop(state["runtime"], state["name"], dict(os.environ))
            os.close(descriptor)
            return
        os.close(descriptor)


class ManifestWatch:
    """Whether the installation's manifest names another build than the instance runs.

    The file is read only when a stat says it changed: a stat is answered from a parallel
    filesystem client's cache, an open is a metadata request (every few seconds, per instance)."""

    def __init__(self, state):
        self.state = state
        self.path = os.path.join(state["prefix"], contract().MANIFEST_PATH)
        self.identity = None

    def replaced(self):
        try:
            info = os.stat(self.path)
        except OSError:
            return True
        identity = (info.st_ino, info.st_size, info.st_mtime_ns)
        if identity == self.identity:
            return False
        import json

        try:
            with open(self.path) as handle:
                build_id = json.load(handle).get("build_id")
        except (OSError, ValueError):
            return True
        self.identity = identity
        return build_id != self.state["build_id"]


def replaced(state):
    """True when the installation's manifest names another build than the instance runs
    (`tykky warm status`)."""
    return ManifestWatch(state).replaced()
