"""Writing a file so that nobody ever sees half of it (weights, pictures, arrays, tables), and never
one that a Ctrl-C asked to stop."""
import contextlib
import os
import signal
import tempfile


def interrupted():
    """True when the SIGINT handler in force has recorded a Ctrl-C in its ``interrupted`` attribute.

    Python cannot propagate an exception raised inside a finaliser or a weakref callback: it prints
    "Exception ignored in ..." and carries on. h5py closes its objects through such callbacks (a
    WeakValueDictionary), so a Ctrl-C landing while a weights file was closed used to vanish, and the
    file was renamed into place as if nothing had happened. A program that owns its process
    (scripts/_common.run) therefore installs a handler that notes the interrupt before raising
    KeyboardInterrupt; the note survives where the exception did not, and :func:`atomic_path`
    refuses to commit after it. Without such a handler this is always False.
    """
    return bool(getattr(signal.getsignal(signal.SIGINT), "interrupted", False))


@contextlib.contextmanager
def atomic_path(path):
    """A temporary name in ``path``'s folder to write the file to; when the block ends without an
    error it is renamed over ``path`` (``os.replace``: atomic on one file system), and on any error
    removed, leaving ``path`` as it was. Missing folders are created. After a Ctrl-C (see
    :func:`interrupted`) nothing is renamed: KeyboardInterrupt is raised instead.

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
        if interrupted():                                       # a Ctrl-C that something swallowed
            raise KeyboardInterrupt
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                           # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
