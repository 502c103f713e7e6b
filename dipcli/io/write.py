"""Writing an :class:`~dipcli.io.image.Image` atomically: all of the file or none of it, and never over
a file that appeared meanwhile unless asked to."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from dipcli.errors import ImageError
from dipcli.io.formats import encode, fit_to_format, writable_suffix
from dipcli.io.image import Image, to_array


class OutputAppeared(ImageError):
    """The output was created by someone else while this result was being made (two runs, one name).

    ``kept`` is where this result went instead, so that the work is not lost.
    """

    def __init__(self, path: Path, kept: Path) -> None:
        super().__init__(f"{path} appeared while this one was made (another run?); this result is "
                         f"kept as {kept}; pass --force to overwrite instead")
        self.path, self.kept = path, kept


@contextmanager
def atomic_write(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, it replaces ``path``.

    Write the file in place at the yielded path (by name: any library's ``save``/``imwrite`` will
    do). Readers and a crash or Ctrl-C mid-write therefore see the old file or the new one, never
    half of one: the data is fsync'ed before the rename and the folder after it, so not even a
    power cut can leave an empty file under the final name. On error the temporary file is removed
    and the exception passes on.

    The new file gets the mode any program's new file gets under the user's umask (0644 under
    umask 022), or the mode of the file it replaces, as an editor saving over it would keep.

    With ``overwrite=False`` the file is put in place only if nothing has that name yet, checked
    and done in one step (:func:`_place_new`): a caller that checked for the name at its start
    (`dip` without ``--force``) cannot replace a file that another run wrote meanwhile. The new
    file is then kept under a free name beside it and :class:`OutputAppeared` says which.
    """
    path = Path(path)
    fd, tmp = _create_beside(path)
    try:
        with suppress(FileNotFoundError):
            if stat.S_ISREG((old := os.stat(path)).st_mode):
                os.chmod(tmp, stat.S_IMODE(old.st_mode))
        yield tmp
        os.fsync(fd)  # flushes the file, whichever descriptor wrote it
        os.close(fd)
        fd = -1
        if overwrite:
            os.replace(tmp, path)
        else:
            _place_new(tmp, path)
    except BaseException:
        if fd != -1:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _create_beside(path: Path) -> tuple[int, Path]:
    """Create a new hidden temporary file next to ``path``, mode 0666 less the umask.

    Not ``tempfile.mkstemp``, whose mode 0600 would survive the rename.
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}{path.suffix}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _place_new(tmp: Path, path: Path) -> None:
    """Give the finished file ``tmp`` the name ``path`` if no file has it; else keep it beside.

    A hard link creates the name only if it is free, atomically. Where a file system has no hard
    links, an empty file created exclusively claims the name and a rename fills it (a reader may
    see it empty for that moment). If the name was taken, the result goes to the first free
    ``<stem>.<n><suffix>`` beside it and :class:`OutputAppeared` says so.
    """
    if _claim(tmp, path):
        return
    for n in range(1, 1000):
        kept = path.with_name(f"{path.stem}.{n}{path.suffix}")
        if _claim(tmp, kept):
            raise OutputAppeared(path, kept)
    raise FileExistsError(f"{path} and the names for keeping this result beside it are taken")


def _claim(tmp: Path, path: Path) -> bool:
    """Move the finished ``tmp`` to ``path`` if no file has that name; False (nothing done) if one has."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:  # no hard links here (some network and FAT file systems): claim, then fill
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            return False
        os.replace(tmp, path)
        return True
    tmp.unlink()
    return True


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; quietly skipped where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse to sync a folder; the rename itself is done
    finally:
        os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write a text file (report, HTML page) with :func:`atomic_write`: all of it or nothing."""
    with atomic_write(path) as tmp:
        tmp.write_text(text, encoding=encoding)


def write_image(path: str | os.PathLike, image: Image, overwrite: bool = True) -> None:
    """Write ``image`` atomically (see :func:`atomic_write`) in the format the suffix names.

    A format that cannot hold the image gets the conversions :func:`output_plan` announces
    (8-bit, no alpha for JPEG/BMP), so every suffix in WRITABLE works for every image. With
    ``overwrite=False`` a file that has ``path``'s name by the end is kept and this image goes
    beside it (:class:`OutputAppeared`).
    """
    path = Path(path)
    ext = writable_suffix(path.suffix, f"{path}: ")
    image, _ = fit_to_format(image, ext)
    data = to_array(image)
    if not path.parent.exists():
        raise ImageError(f"{path.parent}: output folder does not exist; create it first")
    try:
        with atomic_write(path, overwrite) as tmp:
            encode(tmp, data, ext, image.meta)
    except OutputAppeared:
        raise
    except Exception as exc:
        raise ImageError(f"{path}: cannot write ({exc.__class__.__name__}: {exc})") from None
