"""Image folders: which files are images, which subfolders are classes. Torch-free, so the
config checks and the loader share one definition."""

from __future__ import annotations

from pathlib import Path

from transferlab.errors import UserError

# What counts as an image file (torchvision's list), for the early check and the loader.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
# What operating systems and tools leave beside images (besides dot files such as .DS_Store
# and macOS's `._` AppleDouble twins): never images, never classes.
SYSTEM_NAMES = frozenset(
    {"Thumbs.db", "ehthumbs.db", "desktop.ini", "__MACOSX", "@eaDir", "$RECYCLE.BIN"}
)


def is_system(name: str) -> bool:
    return name.startswith(".") or name in SYSTEM_NAMES


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not is_system(path.name)


def no_images(folder: Path) -> UserError:
    return UserError(
        f"Class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}). Fix: add images "
        "to it or remove it."
    )


def class_tree(root: Path) -> Path:
    """The folder whose subfolders are the classes: root/train when there is one."""
    return root / "train" if (root / "train").is_dir() else root


def class_folders(tree: Path) -> list[str]:
    """The class names (subfolders) of a folder; UserError unless there are at least two."""
    classes = sorted(p.name for p in tree.iterdir() if p.is_dir() and not is_system(p.name))
    if len(classes) < 2:
        raise UserError(
            f"{tree} holds {len(classes)} class folder(s) {classes}: a classifier needs at "
            f"least two. Put each class's images in its own subfolder, e.g. {tree}/cat/1.jpg "
            f"and {tree}/dog/1.jpg."
        )
    return classes
