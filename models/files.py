"""Writing a file so that nobody ever sees half of it (weights, pictures, arrays, tables)."""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """A temporary name in ``path``'s folder to write the file to; when the block ends without an
    error it is renamed over ``path`` (``os.replace``: atomic on one file system), and on any error
    removed, leaving ``path`` as it was. Missing folders are created.

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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)                           # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
