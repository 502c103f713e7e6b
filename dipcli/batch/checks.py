"""Usage errors a batch can know before reading any image: options that exclude each other, name
templates that do not fill, pictures and reports that could not be written. Refused at once, so
that no batch fails hours in on what was wrong from the start.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from string import Formatter

from dipcli.batch.settings import Task
from dipcli.errors import Fail
from dipcli.extras import have, needs
from dipcli.report.plots import PLOT_TYPES, have_matplotlib, missing_matplotlib, needs_matplotlib

FIELDS = ("stem", "task", "ext", "parent")
DEFAULT_NAME = "{stem}_{task}.{ext}"
REPORT_TYPES = (".csv", ".json")


def template_fields(template: str, what: str) -> set[str]:
    """The fields a name template uses; unknown ones are a usage error."""
    try:
        names = {f for _, f, _, _ in Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise Fail(f"{what} {template!r}: {exc}; write fields as {{stem}}, {{task}}, {{ext}}, {{parent}}") \
            from None
    unknown = names - set(FIELDS)
    if unknown:
        raise Fail(f"{what} {template!r}: unknown field {{{sorted(unknown)[0]}}}; "
                   "the fields are {stem}, {task}, {ext} and {parent}")
    return names


def check_settings(task: Task, batch: bool) -> None:
    """Usage errors that need no image: refuse them before any work starts."""
    check_naming(task, batch)
    check_cluster(task)
    check_references(task, batch)
    check_pictures(task, batch)
    check_reports(task)


def check_naming(task: Task, batch: bool) -> None:
    """-o, --output-dir and --name: one way to name the outputs, and templates that fill."""
    s = task.settings
    if s.output is not None and batch:
        raise Fail("-o/--output names the output of one input; for several use --output-dir DIR "
                   "(and --name TEMPLATE)")
    if s.output is not None and (s.output_dir is not None or s.name is not None):
        raise Fail("-o/--output names the file itself; drop --output-dir/--name, or drop -o")
    if s.force and s.skip_existing:
        raise Fail("--force overwrites existing outputs, --skip-existing keeps them; choose one")
    if s.output_dir is not None and s.output_dir.exists() and not s.output_dir.is_dir():
        raise Fail(f"--output-dir {s.output_dir} is a file; name a folder")
    template_fields(s.name or DEFAULT_NAME, "--name")
    if s.mask_pattern is not None:
        template_fields(s.mask_pattern, "--mask-pattern")


def check_cluster(task: Task) -> None:
    """--jobs, --group, --cluster and --shared-fs: where the fits run, one way at a time."""
    s, fit = task.settings, task.fit
    if s.jobs > 1 and not fit.group.auto and fit.group.size > 1:
        raise Fail("--jobs runs fits in separate processes, --group batches them in one; choose one")
    if s.cluster is None:
        if s.shared_fs:
            raise Fail("--shared-fs says how a --cluster's workers reach the files; give --cluster too")
        return
    from dipcli.batch.address import check_address

    if not have("distributed"):
        raise Fail(needs("distributed", "--cluster"))
    check_address(s.cluster)
    if s.jobs > 1:
        raise Fail("--jobs runs fits in processes here, --cluster (or DIP_CLUSTER) on a Dask "
                   "cluster's workers; choose one")
    if not s.shared_fs and (s.snapshots is not None or s.gif is not None):
        raise Fail("--snapshots and --gif write frames during the fit, on the worker; add "
                   "--shared-fs if the workers see these paths, or drop them")


def check_references(task: Task, batch: bool) -> None:
    """--clean/--clean-dir and --mask/--mask-pattern: one of each pair, the batch form for a batch."""
    s = task.settings
    if s.clean is not None and s.clean_dir is not None:
        raise Fail("give either --clean FILE (one input) or --clean-dir DIR, not both")
    if s.clean is not None and batch:
        raise Fail("--clean names the reference of one input; for several use --clean-dir DIR "
                   "(references paired by file name)")
    if s.clean_dir is not None and not s.clean_dir.is_dir():
        raise Fail(f"--clean-dir {s.clean_dir}: no such folder")
    if s.mask is not None and s.mask_pattern is not None:
        raise Fail("give either --mask FILE (one image) or --mask-pattern TEMPLATE, not both")
    if s.mask is not None and batch:
        raise Fail("--mask names the mask of one image; for several pair them with "
                   "--mask-pattern '{stem}_mask.png' (looked up beside each image)")


def check_pictures(task: Task, batch: bool) -> None:
    """--snapshots, --gif, --save-every and --plot: frames need a rate, each input its own file."""
    s, fit = task.settings, task.fit
    if s.snapshots is not None and fit.save_every <= 0:
        raise Fail("--snapshots DIR needs --save-every N with N 1 or more: how often to take a snapshot")
    if s.gif is not None and fit.save_every <= 0:
        raise Fail("--gif needs --save-every N with N 1 or more: how often to take a frame")
    if fit.save_every > 0 and s.snapshots is None and s.gif is None:
        raise Fail("--save-every N and --snapshots DIR go together (or --gif FILE)")
    pictures = (("--plot", s.plot, PLOT_TYPES, "curves.png"), ("--gif", s.gif, (".gif",), "progress.gif"))
    for what, value, types, example in pictures:
        if value is None:
            continue
        if not template_fields(value, what) and batch:
            raise Fail(f"{what} {value!r}: every input of a batch needs its own file; put a field "
                       f"in the name, e.g. {what} '{{stem}}_{example}'")
        if Path(value).suffix.lower() not in types:
            raise Fail(f"{what} {value}: name it with one of {', '.join(types)}")
    if s.plot is not None and needs_matplotlib(s.plot) and not have_matplotlib():
        raise Fail(missing_matplotlib())


def check_reports(task: Task) -> None:
    """--html and --report: a known type, in a folder that exists and takes a new file."""
    s = task.settings
    for what, path, types in (("--html", s.html, (".html", ".htm")), ("--report", s.report, REPORT_TYPES)):
        if path is None:
            continue
        if path.suffix.lower() not in types:
            raise Fail(f"{what} {path}: name it {' or '.join(types)}")
        if path.is_dir():
            raise Fail(f"{what} {path} is a folder; name a file in it, e.g. {path / ('report' + types[0])}")
        if not path.parent.is_dir():
            raise Fail(f"{what} {path}: folder {path.parent} does not exist; create it first")
        check_writable(path.parent, f"{what} {path}")


def check_writable(folder: Path, what: str) -> None:
    """Refuse, before any fit, a folder that cannot take a new file (read-only, /proc, no room).

    Tried for real, with a temporary file that is removed at once: permission bits do not tell
    (root ignores them; a read-only mount or a pseudo-filesystem refuses anyway). A folder that
    does not exist yet (``--output-dir``) is not created here, since a call refused later (a
    missing input) must leave nothing behind: the nearest folder that exists takes the test,
    and the folder is made when the first output is written.
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise Fail(f"{what}: cannot write in {folder} ({existing} is a file); choose a folder you can "
                   "write to")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise Fail(f"{what}: cannot write in {folder} ({reason}); choose a folder you can write to") from None
