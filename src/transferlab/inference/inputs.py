"""Which files `predict.py input=<folder | file | glob>` reads, in order. Torch-free.

Folders are walked recursively with training's image rules (`image_files.is_image`);
other files found there are reported as skipped, never fatal.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from transferlab.errors import UserError
from transferlab.image_files import IMAGE_SUFFIXES, is_image


@dataclass
class Inputs:
    images: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why)


def list_inputs(spec: str) -> Inputs:
    """The image files `spec` names (a folder, one file or a glob), sorted, and the rest."""
    path = Path(spec).expanduser()
    if path.is_dir():
        candidates = sorted(p for p in path.rglob("*") if p.is_file())
    elif path.is_file():
        candidates = [path]
    else:
        candidates = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        candidates = [p for p in candidates if p.is_file()]
        if not candidates:
            raise UserError(
                f"input={spec} is no folder, file or glob that matches a file. Fix: give a "
                "folder of images (walked recursively), one image, or a quoted glob such as "
                "'input=photos/**/*.jpg'."
            )
    found = Inputs(images=[])
    for file in candidates:
        if file.name.startswith("."):
            continue  # .DS_Store and the like: never images, not worth a line
        if is_image(file):
            found.images.append(file)
        else:
            found.skipped.append((file, f"not an image file ({', '.join(IMAGE_SUFFIXES)})"))
    if not found.images:
        raise UserError(
            f"input={spec} holds no image files ({', '.join(IMAGE_SUFFIXES)}); "
            f"{len(found.skipped)} other file(s) were found. Fix: point input= at images."
        )
    return found
