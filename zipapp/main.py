"""The __main__ of tykky.pyz: extract the packages once per user, then run the command line.

Written so that any Python parses it, to tell the user of a too old one what to do. The warm
path is one stat and a sys.path entry: no zipfile, no hashing, no locking.

The extraction cache is per user and never the current directory: TYKKY_CACHE_DIR, else
$XDG_CACHE_HOME/tykky, else ~/.cache/tykky, else /tmp/tykky-<uid>. Concurrent first starts
take a lock and extract into a private directory that is renamed into place, so a process
sees no extraction or a complete one. Extractions unused for KEEP_DAYS are pruned.
"""
import os
import sys

# build_zipapp.py writes both: requires-python of pyproject.toml, the packages' hash.
MINIMUM = (3, 6)
BUILD_ID = "unbuilt"
KEEP_DAYS = 14
DAY = 86400
MEMBERS = "site-packages/"
# Backports of standard modules Python 3.6 lacks (dataclasses), put on sys.path only there.
BACKPORTS_36 = "backports-py36"


def fail(message):
    sys.stderr.write("tykky: %s\n" % message)
    sys.exit(1)


def check_python():
    if sys.version_info[:2] < MINIMUM:
        fail("%s is Python %d.%d, too old: tykky needs Python %d.%d or newer. Set TYKKY_PYTHON to a "
             "newer python3 (or load a newer Python module) and run it again."
             % (((sys.executable or "this interpreter"),) + tuple(sys.version_info[:2]) + MINIMUM))


def utf8_locale():
    """Python 3.6 in the C or POSIX locale writes ASCII only: do what
    3.7 does itself (PEP 538, 540), set LC_CTYPE (LC_ALL, if that is what set the C locale) to a
    UTF-8 locale, inherited by the programs it runs, and start again with the same options."""
    if sys.version_info >= (3, 7) or not sys.executable:
        return
    import codecs
    import locale

    if codecs.lookup(locale.getpreferredencoding(False)).name != "ascii":
        return
    for name in ("C.UTF-8", "C.utf8", "UTF-8"):
        try:
            locale.setlocale(locale.LC_CTYPE, name)
        except locale.Error:
            continue
        if codecs.lookup(locale.getpreferredencoding(False)).name == "utf-8":
            os.environ["LC_ALL" if os.environ.get("LC_ALL") else "LC_CTYPE"] = name
            options = [option for option, given in (("-E", sys.flags.ignore_environment),
                                                    ("-s", sys.flags.no_user_site), ("-S", sys.flags.no_site))
                       if given]
            os.execv(sys.executable, [sys.executable] + options + sys.argv)


def home_directory():
    home = os.environ.get("HOME", "")
    if os.path.isabs(home) and home != "/":
        return home
    try:
        import pwd

        home = pwd.getpwuid(os.getuid()).pw_dir
    except (ImportError, KeyError):
        return ""
    return home if os.path.isabs(home) and home != "/" else ""


def cache_roots():
    """Where the cache may go, best first; only absolute paths, so never the current directory."""
    roots = []
    for variable, suffix in (("TYKKY_CACHE_DIR", ""), ("XDG_CACHE_HOME", "tykky")):
        value = os.environ.get(variable, "")
        if os.path.isabs(value):
            roots.append(os.path.join(value, suffix) if suffix else value)
    home = home_directory()
    if home:
        roots.append(os.path.join(home, ".cache", "tykky"))
    roots.append("/tmp/tykky-%d" % os.getuid())
    return roots


def usable_directory(path, shared_parent):
    """Create path (0700); in a shared parent such as /tmp, refuse one another user could own."""
    os.makedirs(path, 0o700, exist_ok=True)
    info = os.lstat(path)
    import stat

    planted = shared_parent and (info.st_uid != os.getuid() or info.st_mode & 0o077)
    if not stat.S_ISDIR(info.st_mode) or planted or not os.access(path, os.W_OK | os.X_OK):
        raise OSError("%s is not a writable private directory" % path)
    return path


def usable_root():
    problems = []
    roots = cache_roots()
    for root in roots:
        try:
            return usable_directory(root, shared_parent=root == roots[-1])
        except OSError as error:
            problems.append(str(error))
    fail("cannot create a cache directory for the extracted program (%s). Set TYKKY_CACHE_DIR to a "
         "writable directory of yours." % "; ".join(problems))


def remove_tree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def prune(root, current):
    """Remove extractions of other builds not used for KEEP_DAYS, and interrupted extractions."""
    import time

    now = time.time()
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        path = os.path.join(root, name)
        if path in (current, current + ".lock"):
            continue
        try:
            age = now - os.lstat(path).st_mtime
        except OSError:
            continue
        if name.startswith("tykky-") and age > KEEP_DAYS * DAY:
            if name.endswith(".lock"):
                os.unlink(path)
                continue
            trash = os.path.join(root, ".trash-%s-%d" % (name, os.getpid()))
            try:
                os.rename(path, trash)  # a starting process sees it whole or not at all
            except OSError:
                continue
            remove_tree(trash)
        elif name.startswith((".extract-", ".trash-")) and age > DAY:
            remove_tree(path)


def extract(archive, root, target):
    """Extract the packages under a lock; a private directory renamed into place."""
    import fcntl
    import tempfile
    import zipfile

    with open(target + ".lock", "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks: the rename below still keeps starts safe
        if os.path.isdir(target):
            return  # another process extracted it while this one waited
        temporary = tempfile.mkdtemp(prefix=".extract-", dir=root)
        with zipfile.ZipFile(archive) as source:
            for member in source.infolist():
                if member.filename.startswith(MEMBERS):
                    path = source.extract(member, temporary)
                    mode = (member.external_attr >> 16) & 0o777
                    if mode and not member.is_dir():
                        os.chmod(path, mode | 0o600)
        try:
            os.rename(temporary, target)
        except OSError:
            remove_tree(temporary)
            if not os.path.isdir(target):
                raise
    prune(root, target)


def site_packages(archive):
    root = usable_root()
    target = os.path.join(root, "tykky-" + BUILD_ID[:20])
    try:
        modified = os.stat(target).st_mtime
    except OSError:
        extract(archive, root, target)
    else:
        import time

        if time.time() - modified > DAY:  # at most once a day: mark it used, prune the others
            try:
                os.utime(target, None)
            except OSError:
                pass
            prune(root, target)
    return os.path.join(target, MEMBERS.rstrip("/"))


def main():
    check_python()
    utf8_locale()
    archive = os.path.abspath(sys.argv[0])
    site = site_packages(archive)
    sys.path.insert(0, site)
    if sys.version_info < (3, 7):
        sys.path.insert(1, os.path.join(site, BACKPORTS_36))
    from tykky import program

    program.started_from_archive(archive, os.environ.pop("_TYKKY_PYTHON_FROM", "command line"))
    from tykky.cli import main as command_line

    command_line()


if __name__ == "__main__":
    main()
