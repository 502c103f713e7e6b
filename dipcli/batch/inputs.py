"""A batch's inputs: files, folders and globs expanded; each input's output, mask and reference named.

Decisions (README, "Batch and scripting", says the same to users):

* A call is a *batch* when it names several inputs, a folder, or a glob; a batch keeps going
  past a bad input and exits 1 if any failed.
* Existing outputs are checked before any work starts: without ``--force`` or
  ``--skip-existing`` the call is refused (exit 2) rather than discovering them one by one
  hours into a batch.
* Files a batch would use as outputs, masks or references of its other inputs are not inputs
  themselves, so re-running on a folder does not restore its own results or masks.
* ``--plot``/``--gif`` take a name template in a batch (``{stem}_curves.png``), relative to
  the current folder like any path; ``--snapshots DIR`` gets one subfolder per input.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dipcli.batch.checks import DEFAULT_NAME, check_settings, check_writable
from dipcli.batch.settings import STDIO, Item, Settings, Task
from dipcli.errors import Fail
from dipcli.io import WRITABLE

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Source:
    path: Path
    base: Path | None = None  # the folder or glob prefix it was found under; None: named directly


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def glob_base(pattern: str) -> Path:
    """The fixed folder a glob starts from: its leading parts without wildcards."""
    fixed = []
    for part in Path(pattern).parts:
        if GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def images_in(folder: Path, recursive: bool) -> list[Path]:
    """The images in a folder, sorted; hidden files (and, recursing, hidden folders) left out."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if is_image(p)
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def expand_inputs(args: Sequence[str | os.PathLike], recursive: bool = False) -> tuple[list[Source], bool]:
    """Files as given; folders become the images in them; globs the shell left alone, their matches.

    Returns the sources (each file once, in order) and whether the call is a batch: several
    arguments, a folder or a glob. A named file that does not exist stays in the list, to be
    reported like any other bad input; a glob that matches no image is a usage error.
    """
    sources: list[Source] = []
    batch = len(args) > 1
    for arg in map(str, args):
        path = Path(arg)
        if path.is_dir():
            batch = True
            sources += [Source(p, path) for p in images_in(path, recursive)]
        elif not path.exists() and GLOB_CHARS & set(arg):
            batch = True
            found: list[Path] = []
            for match in sorted(Path(m) for m in glob.glob(arg, recursive=True)):
                if match.is_dir():
                    found += images_in(match, recursive)
                elif is_image(match):
                    found.append(match)
            if not found:
                raise Fail(f"{arg}: no image matches this pattern")
            base = glob_base(arg)
            sources += [Source(p, base) for p in found]
        else:
            sources.append(Source(path))
    first: dict[Path, Source] = {}
    for source in sources:
        first.setdefault(source.path.resolve(), source)
    return list(first.values()), batch


# ---- naming and pairing --------------------------------------------------------------------------

def fill(template: str, path: Path, task: str) -> str:
    """``{stem}_{task}.{ext}`` for ``photos/cat.png`` and task ``denoised``: ``cat_denoised.png``;
    ``{parent}`` is the name of the folder the input is in (``photos``)."""
    try:
        return template.format(stem=path.stem, task=task, ext=path.suffix.lstrip("."),
                               parent=path.absolute().parent.name)
    except ValueError as exc:  # a format spec that does not suit a name, e.g. {stem:d}
        raise Fail(f"{template!r}: {exc}") from None


def relative_folder(source: Source) -> Path:
    """Where, under the folder or glob it came from, the input lies: mirrored by --output-dir."""
    if source.base is None:
        return Path()
    rel = Path(os.path.relpath(source.path.parent, source.base))
    return Path() if rel.parts[:1] == ("..",) else rel


def plan_item(index: int, source: Source, task: Task, batch: bool) -> Item:
    s, path = task.settings, source.path
    if s.output is not None:
        output = s.output
    elif path == STDIO:  # a filter: stdin to stdout
        output = STDIO
    else:
        name = fill(s.name or DEFAULT_NAME, path, task.suffix)
        folder = path.parent if s.output_dir is None else s.output_dir / relative_folder(source)
        output = folder / name
    mask = s.mask if s.mask is not None else (
        path.parent / fill(s.mask_pattern, path, task.suffix) if s.mask_pattern else None)
    clean = s.clean if s.clean is not None else (s.clean_dir / path.name if s.clean_dir else None)
    snapshots = s.snapshots
    if snapshots is not None and batch:  # a subfolder per input: frames are named by iteration
        snapshots = snapshots / relative_folder(source) / path.stem
    return Item(index, path, output, mask, clean, snapshots,
                Path(fill(s.plot, path, task.suffix)) if s.plot else None,
                Path(fill(s.gif, path, task.suffix)) if s.gif else None, kind=format_type(s.format))


def check_type(output: Path, batch: bool) -> None:
    if output.suffix.lower() not in WRITABLE:
        raise Fail(f"{output}: unknown image type {output.suffix or '(none)'}; name the output with one "
                   f"of {', '.join(WRITABLE)}" + (" (--name)" if batch else " (-o or --name)"))


def format_type(value: str | None) -> str | None:
    """``--format png`` (or ``.PNG``) as the file type ``.png``; None when not given."""
    if value is None:
        return None
    kind = "." + value.lower().lstrip(".")
    if kind not in WRITABLE:
        raise Fail(f"--format {value}: give one of {', '.join(t.lstrip('.') for t in WRITABLE)}")
    return kind


def check_streams(s: Settings, sources: list[Source], batch: bool) -> None:
    """``-`` as the input (stdin) or the output (stdout): refuse what cannot work with them."""
    stdin = any(src.path == STDIO for src in sources)
    stdout = s.output == STDIO or (stdin and s.output is None)
    if stdin and batch:
        raise Fail("- reads one image from stdin; give it as the only input")
    if stdin and sys.stdin is not None and sys.stdin.isatty():
        raise Fail("-: stdin is a terminal; pipe an image in, e.g. dip denoise - < photo.png > out.png")
    if stdin and s.output is None and (s.output_dir is not None or s.name is not None):
        raise Fail("- (stdin) has no file name to name an output after; give -o FILE, or -o - for stdout")
    if (stdin or stdout) and s.shared_fs:
        raise Fail("- (stdin or stdout) is this process's own; with --shared-fs the workers read and "
                   "write files: name files instead")
    if stdout and s.json_out:
        raise Fail("-o - writes the image to stdout, where --json writes its lines; drop one (--report "
                   "FILE keeps the numbers)")
    if stdout and sys.stdout.isatty():
        raise Fail("-o -: stdout is a terminal; redirect it to a file (> out.png) or a pipe, or give -o FILE")
    format_type(s.format)
    if s.format is not None and not stdout:
        raise Fail(f"--format {s.format} names the type of an image written to stdout (-o -); a file's "
                   "suffix names its own")


def tell_apart(a: Path, b: Path, option: str) -> str:
    """How a name template can give two inputs' outputs different names: the field that differs."""
    field = "{parent}" if a.name == b.name else "{ext}" if a.stem == b.stem else "{stem}"
    if option == "--name":
        example = {"{parent}": "{parent}_{stem}_{task}.{ext}", "{ext}": "{stem}_{task}.{ext}",
                   "{stem}": "{stem}_{task}.{ext}"}[field]
        return f"put {field} in the name, e.g. --name '{example}'"
    if option:
        return f"put {field} in the {option} template"
    return "give the inputs different names"


def instead_of_folder(path: Path, option: str, item: Item, s: Settings) -> str:
    """What to give instead of an output path that is a folder (found before the fit, not after)."""
    if option != "--name":
        return f"name a file in it ({option} {path / 'NAME'}.png)"
    if s.output is None:
        return "choose another --name"
    return f"name a file in it (-o {path / item.input.stem}.png) or give --output-dir {path}"


def check_outputs(items: list[Item], batch: bool, s: Settings) -> list[Item]:
    """Refuse outputs that would overwrite an input or each other, or that are folders; decide
    about existing ones; and check their folders take files, all before any fit."""
    inputs = {i.input.resolve() for i in items}
    typed_by_input = s.output is None and "{ext}" in (s.name or DEFAULT_NAME)  # checked per input
    files = [i for i in items if not i.to_stdout]
    for item in files:
        out = item.output
        if not typed_by_input:
            check_type(out, batch)
        if out.resolve() in inputs | {p.resolve() for p in (item.mask, item.clean) if p is not None}:
            raise Fail(f"{out}: the output would overwrite an input; choose another "
                       + ("--name" if batch else "-o"))
        if s.output is not None and not out.parent.is_dir():
            raise Fail(f"{out.parent}: output folder does not exist; create it first")
    check_distinct(items, s)
    items = settle_existing(items, files, batch, s)
    folders = dict.fromkeys(folder for i in items if not i.skip for folder in (
        *(p.parent for p in (i.output, i.plot, i.gif) if p is not None and p != STDIO),
        *([i.snapshots] if i.snapshots is not None else [])))
    what = "--output-dir" if s.output_dir is not None else "-o" if s.output is not None else "the outputs"
    for folder in folders:
        check_writable(folder, what)
    return items


def check_distinct(items: list[Item], s: Settings) -> None:
    """Every file a batch writes (outputs, plots, GIFs, snapshot folders) belongs to one input, and
    none of them is a folder already."""
    written: dict[Path, Item] = {}
    for item in items:
        named = (("--name", None if item.to_stdout else item.output), ("--plot", item.plot),
                 ("--gif", item.gif), ("", item.snapshots))
        for option, path in named:
            if path is None:
                continue
            if option and path.is_dir():
                raise Fail(f"{path}: is a folder, not a file; {instead_of_folder(path, option, item, s)}")
            other = written.setdefault(path.resolve(), item)
            if other is not item:
                raise Fail(f"{path}: both {other.input} and {item.input} would write here; "
                           + tell_apart(other.input, item.input, option))


def settle_existing(items: list[Item], files: list[Item], batch: bool, s: Settings) -> list[Item]:
    """Outputs that exist already: refused, unless --force overwrites or --skip-existing keeps them."""
    existing = [i for i in files if i.output.exists()]
    if existing and not (s.force or s.skip_existing):
        if not batch:
            raise Fail(f"{existing[0].output} exists; pass --force to overwrite it or -o to choose "
                       "another name")
        raise Fail(f"{len(existing)} of {len(items)} outputs exist already (e.g. {existing[0].output}); "
                   "pass --skip-existing to resume the batch or --force to overwrite them")
    if s.skip_existing:
        items = [replace(i, skip=not i.to_stdout and i.output.exists()) for i in items]
    return items


def plan(task: Task, sources: list[Source], batch: bool) -> list[Item]:
    """Every input's paths, checked; files the batch itself uses for other inputs are dropped."""
    check_settings(task, batch)
    check_streams(task.settings, sources, batch)
    items = [plan_item(n, src, task, batch) for n, src in enumerate(sources)]
    users: dict[Path, set[int]] = {}  # file → the inputs that write or read it besides themselves
    for i in items:
        for path in (i.output, i.mask, i.clean):
            if path is not None:
                users.setdefault(path.resolve(), set()).add(i.index)
    kept = [src for src, item in zip(sources, items, strict=True)
            if src.base is None or not users.get(item.input.resolve(), set()) - {item.index}]
    if len(kept) < len(sources):
        items = [plan_item(n, src, task, batch) for n, src in enumerate(kept)]
    if not items:
        raise Fail("no images found; give image files, folders holding them, or a quoted glob")
    return check_outputs(items, batch, task.settings)
