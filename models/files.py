"""Writing a file so that nobody ever sees half of it (weights, pictures, arrays, tables), and never
one that a Ctrl-C asked to stop."""
import contextlib
import os
import tempfile

_interrupted = False


def on_sigint(signum=None, frame=None):
    """A SIGINT handler for programs (scripts/_common.run installs it): note the interrupt, then raise
    KeyboardInterrupt as Python's own handler does.

    Python cannot propagate an exception raised inside a finaliser or a weakref callback: it prints
    "Exception ignored in ..." and carries on. h5py closes its objects through such callbacks (a
    WeakValueDictionary), so a Ctrl-C landing while a weights file is closed used to vanish, and the
    file was renamed into place as if nothing had happened. The note survives: :func:`atomic_path`
    refuses to commit after it, and ``interrupted()`` tells the program to exit 130.
    """
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def interrupted():
    """True once :func:`on_sigint` has run in this process (even if its KeyboardInterrupt was lost)."""
    return _interrupted


@contextlib.contextmanager
def atomic_path(path):
    """A temporary name in ``path``'s folder to write the file to; when the block ends without an
    error it is renamed over ``path`` (``os.replace``: atomic on one file system), and on any error
    removed, leaving ``path`` as it was. Missing folders are created. After a Ctrl-C (see
    :func:`on_sigint`) nothing is renamed: KeyboardInterrupt is raised instead.

        with atomic_path("out/map.png") as tmp:
            Image.fromarray(picture).save(tmp, format="PNG")
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        if _interrupted:                                        # a Ctrl-C that something swallowed
            raise KeyboardInterrupt
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                           # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
