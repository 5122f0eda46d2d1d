"""Checks on a composed config that run before torch is imported or anything is built."""

from __future__ import annotations

import difflib
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from transferlab import input_size, model_facts, tensor_files, training_options
from transferlab.errors import UserError

MODES = ("scratch", "finetune", "feature_extract", "partial", "gradual", "distill")


def validate_train(cfg: DictConfig) -> None:
    """Raise UserError on the first value that cannot work, in seconds not after a download."""
    _positive(cfg, "lr", float, "lr=1e-3")
    _positive(cfg, "epochs", int, "epochs=10")
    _positive(cfg, "batch_size", int, "batch_size=64")
    _no_missing(cfg)
    mode = cfg.mode.name
    if mode not in MODES:
        raise UserError(
            f"Unknown mode {mode!r}. Choose one of {', '.join(MODES)}, e.g. mode=finetune."
        )
    model = cfg.model
    if mode == "partial" and (model.get("unfreeze") is None or int(model.unfreeze) < 0):
        raise UserError(
            f"mode=partial trains the last model.unfreeze layer groups, but model.unfreeze is "
            f"{model.get('unfreeze')}. Give a count from 0 (head only) upwards, "
            f"e.g. model.unfreeze=2."
        )
    if mode in ("feature_extract", "partial", "gradual") and not (
        model.get("pretrained") or model.get("weights")
    ):
        raise UserError(
            f"mode={mode} freezes backbone layers, but model={model.get('name')} has no "
            f"pretrained weights (model.pretrained=false, model.weights=null): features of a "
            f"random network are meaningless. Use mode=scratch to train it from random init, "
            f"or give weights with model.pretrained=true or model.weights=<file>."
        )

    training_options.check(cfg)
    _weights_file(model.get("weights"))
    _model_name(model)
    _image_folder(cfg.data)
    layers = (cfg.get("features") or {}).get("layers")
    if mode == "partial":
        groups = model_facts.layer_groups(model)
        if groups is not None:
            check_unfreeze(model.unfreeze, groups)
    if not layers:  # features read from inner layers take smaller images than the full net
        _image_size(input_size.resolve(cfg), model)
    if model.get("weights"):
        _weights_fit(Path(str(model.weights)).expanduser(), model)


def validate_eval(cfg: DictConfig) -> None:
    _positive(cfg, "batch_size", int, "batch_size=64")
    _visualize_options(cfg.get("visualize"))
    ckpt = Path(str(cfg.ckpt_path)).expanduser()
    if not ckpt.is_file():
        raise UserError(
            f"ckpt_path={cfg.ckpt_path} is not a file. Point it at a run's checkpoint, e.g. "
            f"ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt."
        )
    header = tensor_files.read_header(ckpt)  # a broken file is refused here
    if cfg.get("data"):
        _image_folder(cfg.data)
        have = _class_count(cfg.data)
        want = header.hparams.get("num_classes") if header else None
        if have is not None and want is not None and have != want:
            raise other_class_count(want, cfg.data.source.get("_target_"), have, ckpt)


EMBEDDINGS = ("tsne", "pca")


def _visualize_options(opts) -> None:
    """eval.py's visualize.* values; layer names are checked against the model once built."""
    if not opts or not opts.get("enabled"):
        return
    if opts.get("embedding") not in EMBEDDINGS:
        raise UserError(
            f"visualize.embedding={opts.get('embedding')} is not a method here. Choose "
            f"{' or '.join(EMBEDDINGS)}, e.g. visualize.embedding=pca."
        )
    for key, least in (
        ("max_images", 1),
        ("feature_map_images", 1),
        ("gradcam", 0),
        ("embedding_max_points", 3),
    ):
        value = opts.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UserError(
                f"visualize.{key}={value} is not valid: it must be a whole number of at least "
                f"{least}, e.g. visualize.{key}={max(least, 8)}."
            )
    layers = opts.get("layers")
    if layers is not None and not (
        OmegaConf.is_list(layers) and all(isinstance(x, str) for x in layers)
    ):
        raise UserError(
            f"visualize.layers={layers} is not a list of layer names. Give layer groups or "
            f"module paths in brackets, e.g. visualize.layers=[block1,block2], or null."
        )


def other_class_count(want: int, data: str, have: int, ckpt: Path) -> UserError:
    return UserError(
        f"The checkpoint predicts {want} classes but data {data} has {have}. Evaluate on data "
        f"with the same classes, or fine-tune on it first with model.weights={ckpt}."
    )


def check_unfreeze(unfreeze, groups: list[str]) -> int:
    """`model.unfreeze` as a count of layer groups, or UserError naming the groups there are."""
    n = len(groups)
    if unfreeze is None or not 0 <= int(unfreeze) <= n:
        raise UserError(
            f"model.unfreeze={unfreeze} is out of range: this backbone has {n} layer groups: "
            f"{', '.join(groups)}. Choose 0 (head only) to {n} (everything), "
            f"e.g. model.unfreeze={min(2, n)}."
        )
    return int(unfreeze)


def too_small(size: int, name, reason: str, origin: str = "") -> UserError:
    chosen = f" ({origin})" if origin else ""
    return UserError(
        f"Images of {size}x{size} px{chosen} are too small for model={name} ({reason}). Give a "
        f"larger size, e.g. data.image_size=224 (null: the size its weights were made for), "
        f"or pick a model made for small images such as model=cnn."
    )


def _image_size(size: input_size.InputSize, model: DictConfig) -> None:
    facts = model_facts.lookup(model)
    smallest = facts and facts.get("min_size")
    if size.pixels and smallest and size.pixels < smallest:
        reason = f"it needs at least {smallest} px"
        raise too_small(size.pixels, model.get("name"), reason, size.origin)


def _weights_fit(file: Path, model: DictConfig) -> None:
    """A weights file that is broken, or is for another architecture, is refused by its header."""
    header = tensor_files.read_header(file)
    if header is None:
        return
    facts = model_facts.lookup(model)
    if header.is_transferlab_checkpoint:
        _checkpoint_fits(file, header, model, facts)
        return
    if facts is None:
        return
    own = model_facts.without_classifier(header.shapes, facts["classifier"])
    if model_facts.fingerprints(own)[0] == facts["keys"]:
        return  # the same tensors by name: shapes are checked (or adapted) when it loads
    if found := model_facts.identify(header.shapes):
        raise UserError(
            f"The weights {str(file)!r} do not fit model {model.get('name')!r}: the file holds "
            f"the tensors of {_few(found)} ({len(header.shapes)} tensors). The file is for "
            f"another architecture; pass a state_dict saved from {model.get('name')}, or choose "
            f"the model the file was saved from, e.g. {_choose(found[0])}."
        )


def _choose(name: str) -> str:
    """The command-line choice that builds library model `name`."""
    if name not in model_facts.TORCHVISION_NAMES:
        return f"model=timm model.name={name}"
    return "model=alexnet" if name == "alexnet" else f"model=vgg16 model.name={name}"


def _checkpoint_fits(file: Path, header, model: DictConfig, facts: dict | None) -> None:
    """A run's checkpoint must hold this model's backbone (its head may differ)."""
    written = header.hparams.get("model") or {}
    prefix = "net.backbone."
    body = {k[len(prefix) :]: v for k, v in header.shapes.items() if k.startswith(prefix)}
    if not body:
        return  # written without its backbone (features.save_backbone=false): the loader says
    if facts is not None:
        fits = model_facts.fingerprints(body)[0] == facts["keys"]
    else:  # a scratch net: another builder, or another number of blocks, has other tensors
        groups = model_facts.layer_groups(written)
        fits = written.get("_target_") in (None, model.get("_target_")) and groups in (
            None,
            model_facts.layer_groups(model),
        )
    if not fits:
        raise UserError(
            f"The checkpoint {str(file)!r} does not fit this model's backbone: it was written "
            f"by a run of {_describe(written, model)}, and this run builds "
            f"{_describe(model, written)}. Use the same model= settings as the run that wrote "
            f"it (model={written.get('name', '?')}), or a checkpoint of this model."
        )


def _describe(model, other) -> str:
    """model=<name>, with its layer groups when the name alone does not tell the two apart."""
    name = model.get("name", "?")
    groups = model_facts.layer_groups(model)
    if name != other.get("name", "?") or groups is None:
        return f"model={name}"
    return f"model={name} (layer groups {', '.join(groups)})"


def _few(names: list[str], limit: int = 3) -> str:
    more = f" (+{len(names) - limit} more with the same tensors)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


# Classes of the datasets a source downloads (tests compare them with the sources' lists).
KNOWN_CLASS_COUNTS = {
    "digits": 10,
    "mnist": 10,
    "fashion_mnist": 10,
    "cifar10": 10,
    "svhn": 10,
    "flowers102": 102,
}


def _no_missing(cfg: DictConfig) -> None:
    """A top-level `???` left by an experiment (e.g. the checkpoint to transfer from)."""
    missing = sorted(str(k) for k in cfg if OmegaConf.is_missing(cfg, k))
    if missing:
        raise UserError(
            f"The chosen configs need a value for {', '.join(missing)}, which is ??? (no "
            f"default). Fix: give it on the command line, e.g. {missing[0]}=<value>; the "
            f"comment at the top of the experiment (or config) that sets it says what it is."
        )


def _class_count(data: DictConfig) -> int | None:
    """How many classes the data config yields, when that is known without loading it."""
    name = input_size.dataset_name(data)
    if name == "image_folder":
        return len(class_folders(class_tree(Path(str(data.source.root)).expanduser())))
    return KNOWN_CLASS_COUNTS.get(str(name))


def unknown_timm_model(name: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"Close names: {', '.join(close)}. " if close else ""
    return UserError(
        f"Unknown timm model {name!r}. {hint}Pick a name from timm.list_models() "
        f"(e.g. model=timm model.name={close[0] if close else 'resnet18'}), or "
        "model=efficientnet_lite0 for offline ImageNet weights."
    )


def _model_name(model: DictConfig) -> None:
    """Check a timm or torchvision name against the names the installed library builds."""
    kind = model_facts.kind_of(model)
    name = model_facts.arch(model.get("name"))
    known = model_facts.names(kind) if kind else None
    if not known or name in known:
        return  # (no timm found without importing it: the builder checks the name)
    unknown = unknown_timm_model if kind == "timm" else unknown_torchvision_model
    raise unknown(name, sorted(known))


def unknown_torchvision_model(name: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"Close names: {', '.join(close)}. " if close else ""
    return UserError(
        f"Unknown torchvision model {name!r}. {hint}Supported: {', '.join(known)}; for any "
        "other network use model=timm model.name=<name>."
    )


def _weights_file(weights) -> None:
    if weights and not Path(str(weights)).expanduser().is_file():
        raise UserError(
            f"model.weights={weights} does not exist. Give a .pth/.pt/.safetensors file or a "
            f"run's checkpoint, e.g. model.weights=logs/train/runs/<run>/checkpoints/best.ckpt, "
            f"or model.weights=null."
        )


def _image_folder(data: DictConfig) -> None:
    """A class-per-subfolder tree must exist and hold at least two classes."""
    source = data.get("source") or {}
    if not str(source.get("_target_", "")).endswith("ImageFolderSource"):
        return
    if OmegaConf.is_missing(source, "root"):
        raise UserError(
            "data=image_folder needs the folder of images: add data.source.root=<folder> "
            "(one subfolder per class, or train/, val/, test/ splits of that)."
        )
    root = Path(str(source.get("root"))).expanduser()
    if not root.is_dir():
        raise UserError(
            f"data.source.root={source.get('root')} is not a folder. Point it at a folder with "
            f"one subfolder per class (or train/, val/, test/ splits of that), e.g. "
            f"data.source.root=/data/flowers."
        )
    tree = class_tree(root)
    classes = class_folders(tree)
    for name in classes:
        if not any(is_image(p) for p in (tree / name).rglob("*")):  # stops at the first
            raise no_images(tree / name)


# What counts as an image file (torchvision's list), for the early check and the loader.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


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
    classes = sorted(p.name for p in tree.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise UserError(
            f"{tree} holds {len(classes)} class folder(s) {classes}: a classifier needs at "
            f"least two. Put each class's images in its own subfolder, e.g. {tree}/cat/1.jpg "
            f"and {tree}/dog/1.jpg."
        )
    return classes


def _positive(cfg: DictConfig, key: str, kind: type, example: str) -> None:
    value = cfg.get(key)
    try:
        ok = kind(value) > 0 and kind(value) == float(value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        what = "a positive number" if kind is float else "a whole number of at least 1"
        raise UserError(f"{key}={value} is not valid: {key} must be {what}, e.g. {example}.")
