"""compat.py: what each use of another library's private API relies on, and that no other
module uses one. A failure here names the upstream change to adapt to."""

from __future__ import annotations

import ast
import inspect
import pickle
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.conftest import run_python
from transferlab import compat

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "transferlab"


def _own_private_names() -> set[str]:
    """Underscored names the package defines itself (functions, classes, attributes);
    compat.py's do not count: it defines other libraries' (`_link_checkpoint`...)."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name == "compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("setattr__"):
                names.add(getattr(node.args[1], "value", ""))  # object.__setattr__(self, ...)
    return {n for n in names if n.startswith("_")}


def _private_uses(tree: ast.AST, own: set[str]) -> list[str]:
    def foreign(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__") and name not in own

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and foreign(node.attr):
            if ast.unparse(node) == "os._exit":  # documented: exit without clean-up
                continue
            found.append(ast.unparse(node))
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "sys.modules":
            found.append(ast.unparse(node))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
            "getattr",
            "setattr",
            "delattr",
        ):
            target = ast.unparse(node.args[0]) if node.args else ""
            name = node.args[1] if len(node.args) > 1 else None
            by_name = isinstance(name, ast.Constant) and foreign(str(name.value))
            if by_name or target.startswith(("torch.", "sys.", "lightning", "timm")):
                found.append(ast.unparse(node))
    return found


def test_no_module_but_compat_uses_another_librarys_private_names():
    own = _own_private_names()
    uses = {
        str(path.relative_to(PACKAGE)): _private_uses(ast.parse(path.read_text()), own)
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "compat.py"
    }
    assert {p: u for p, u in uses.items() if u} == {}, "move these into transferlab/compat.py"


def test_run_exit_hooks_now_stops_threads_and_runs_each_atexit_hook_once():
    import atexit
    import threading

    shutdown = getattr(threading, "_shutdown", None)
    assert callable(shutdown), "CPython removed threading._shutdown: exit_fast exits normally"
    assert not inspect.signature(shutdown).parameters, "threading._shutdown takes arguments now"
    assert callable(getattr(atexit, "_run_exitfuncs", None)), "CPython removed _run_exitfuncs"
    script = (
        "import atexit, os\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from transferlab import compat\n"
        "atexit.register(print, 'hook')\n"
        "pool = ThreadPoolExecutor(1); pool.submit(print, 'pool').result()\n"
        "print(compat.run_exit_hooks_now(), compat.run_exit_hooks_now(), flush=True)\n"
        "os._exit(0)\n"
    )
    proc = run_python(script, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # An idle pool worker did not keep the process waiting; the hook ran once, not twice.
    assert proc.stdout.split() == ["pool", "hook", "True", "True"]


def test_module_hidden_makes_its_import_fail_and_leaves_imported_modules_alone():
    with compat.module_hidden("transferlab_no_such_module"), pytest.raises(ImportError):
        import transferlab_no_such_module  # noqa: F401
    assert "transferlab_no_such_module" not in sys.modules
    with compat.module_hidden("json"):  # imported before: not hidden
        import json
    assert json.dumps(1) == "1"


def test_timm_still_probes_wandb_at_import_and_imports_with_it_hidden():
    probe = (
        "import inspect, sys\n"
        "from transferlab import compat\n"
        "with compat.module_hidden('wandb'):\n"
        "    import timm.utils.summary as summary\n"
        "print('wandb' in sys.modules, 'import wandb' in inspect.getsource(summary))\n"
    )
    proc = run_python(probe)
    assert proc.returncode == 0, f"timm no longer imports with wandb hidden:\n{proc.stderr}"
    loaded, probes = proc.stdout.split()
    assert loaded == "False"
    assert probes == "True", (
        "timm.utils.summary no longer imports wandb at import time: hiding it in "
        "models/timm_lib.py saves nothing now; drop compat.module_hidden there."
    )


def test_numpy_array_reconstructor_is_the_function_pickled_arrays_name():
    import pickletools

    import numpy as np

    data = pickle.dumps(np.arange(3), protocol=2)
    names = [arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"]
    module, name = names[0].split()
    assert name == "_reconstruct", f"numpy pickles arrays through {names[0]} now"
    assert compat.numpy_array_reconstructor() is getattr(sys.modules[module], name)


def test_config_node_is_the_stored_node_with_interpolations_and_missing_unresolved():
    from omegaconf import DictConfig, OmegaConf

    assert hasattr(DictConfig, "_get_node"), "OmegaConf removed DictConfig._get_node"
    cfg = OmegaConf.create({"a": "${b}", "b": {"c": 1}, "m": "???"})
    assert isinstance(cfg.a, DictConfig)  # the public access resolves...
    assert not isinstance(compat.config_node(cfg, "a"), DictConfig)  # ... the node does not
    assert isinstance(compat.config_node(cfg, "b"), DictConfig)
    assert compat.config_node(cfg, "m") is not None  # `cfg["m"]` would raise
    assert OmegaConf.is_missing(cfg, "m")


def test_non_persistent_buffers_names_exactly_those_left_out_of_the_state_dict():
    module = nn.Module()
    assert hasattr(module, "_non_persistent_buffers_set"), (
        "torch removed Module._non_persistent_buffers_set: compat.non_persistent_buffers "
        "must tell a buffer's persistence another way."
    )
    module.register_buffer("kept", torch.zeros(1))
    module.register_buffer("dropped", torch.zeros(1), persistent=False)
    assert compat.non_persistent_buffers(module) == {"dropped"}
    assert set(module.state_dict()) == {"kept"}


def test_tensor_methods_skipped_on_meta_skip_only_meta_init_and_are_restored(monkeypatch):
    from transferlab.models.measure_facts import _IN_PLACE

    missing = [name for name in _IN_PLACE if not hasattr(torch.Tensor, name)]
    assert not missing, f"torch.Tensor no longer has {missing}: update measure_facts._IN_PLACE"
    calls = []
    uniform = torch.Tensor.uniform_

    def counted(self, *args, **kwargs):
        calls.append(self.device.type)
        return uniform(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "uniform_", counted)
    before = {name: getattr(torch.Tensor, name) for name in _IN_PLACE}
    with compat.tensor_methods_skipped_on_meta(_IN_PLACE):
        meta = torch.empty(4, 4, device="meta")
        assert nn.init.kaiming_uniform_(meta) is meta
        real = torch.zeros(4, 4)
        nn.init.kaiming_uniform_(real)  # torch's init goes through the Tensor methods
        assert real.abs().sum() > 0
    assert calls == ["cpu"], "torch's init no longer calls Tensor.uniform_: the patch is idle"
    assert {name: getattr(torch.Tensor, name) for name in _IN_PLACE} == before


def test_timm_checkpoint_filter_is_the_architectures_own_and_adapts_a_file():
    from transferlab.models.timm_lib import timm

    small = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64)
    filter_fn = compat.timm_checkpoint_filter(small)
    assert filter_fn is not None, (
        "timm.models.vision_transformer has no module-level checkpoint_filter_fn any more: "
        "compat.timm_checkpoint_filter must find timm's file adapter another way."
    )
    assert list(inspect.signature(filter_fn).parameters)[:2] == ["state_dict", "model"]
    state = timm.create_model("vit_tiny_patch16_224", pretrained=False).state_dict()
    adapted = filter_fn(state, small)
    assert adapted["pos_embed"].shape == small.pos_embed.shape != state["pos_embed"].shape


def test_route_ddp_children_rebinds_the_name_lightnings_launchers_call(monkeypatch):
    from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
    from lightning.pytorch.strategies.launchers import subprocess_script as trainer_launcher

    for launcher in (fabric_launcher, trainer_launcher):
        original = getattr(launcher, "_hydra_subprocess_cmd", None)
        assert original is not None, f"{launcher.__name__}._hydra_subprocess_cmd is gone"
        assert list(inspect.signature(original).parameters) == ["local_rank"]
        children = launcher._SubprocessScriptLauncher._call_children_scripts
        assert "_hydra_subprocess_cmd" in children.__code__.co_names, (
            f"{launcher.__name__} no longer looks _hydra_subprocess_cmd up at call time: "
            "rebinding it does not route DDP children any more."
        )
        monkeypatch.setattr(launcher, "_hydra_subprocess_cmd", original)  # restored after

    def command(local_rank: int):
        return ["child", str(local_rank)], "."

    compat.route_ddp_children(command)
    assert (
        fabric_launcher._hydra_subprocess_cmd is trainer_launcher._hydra_subprocess_cmd is command
    )


def test_link_hook_checkpoint_routes_lightnings_link_step_to_link_last():
    from lightning.pytorch.callbacks import ModelCheckpoint

    for name, params in (
        ("_link_checkpoint", ["trainer", "filepath", "linkpath"]),  # a staticmethod in 2.6
        ("_save_checkpoint", ["trainer", "filepath"]),
    ):
        method = getattr(ModelCheckpoint(), name, None)
        assert method is not None, f"Lightning's ModelCheckpoint.{name} is gone"
        assert list(inspect.signature(method).parameters) == params, f"{name} changed"
    last = ModelCheckpoint._save_last_checkpoint.__code__.co_names
    assert "_link_checkpoint" in last, "save_last='link' no longer calls _link_checkpoint"
    assert isinstance(ModelCheckpoint()._last_global_step_saved, int)

    calls = []

    class Probe(compat.LinkHookCheckpoint):
        def link_last(self, trainer, filepath: str, linkpath: str) -> None:
            calls.append((filepath, linkpath))

    probe = Probe(save_last="link")
    probe._link_checkpoint(None, "epoch=1.ckpt", "last.ckpt")
    assert calls == [("epoch=1.ckpt", "last.ckpt")]
    assert probe.saved_step == 0
    # Callbacks may be pickled (ddp_spawn): the class is found under its module-level name.
    assert pickle.loads(pickle.dumps(compat.LinkHookCheckpoint)) is compat.LinkHookCheckpoint


def test_optuna_storage_and_trial_id_find_a_trial_again_by_its_number():
    import optuna

    study = optuna.create_study()
    study.ask(), study.ask()
    storage = compat.optuna_storage(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    trial_id = compat.optuna_trial_id(study, 1)
    assert storage.get_trial(trial_id).number == 1
    optuna.trial.Trial(study, trial_id).report(0.5, step=0)  # what a trial's job does
    assert study.trials[1].intermediate_values == {0: 0.5}
    assert study.trials[0].intermediate_values == {}


def test_stateful_while_training_covers_every_dropout_and_batch_norm_torch_has():
    stateful = compat.stateful_while_training()
    for cls in (nn.Dropout, nn.Dropout2d, nn.AlphaDropout, nn.BatchNorm1d, nn.BatchNorm2d):
        assert isinstance(cls(4) if "Norm" in cls.__name__ else cls(), stateful), cls
    for cls in (nn.ReLU, nn.LayerNorm, nn.GroupNorm, nn.Identity):
        module = cls(4) if cls is nn.LayerNorm else cls(2, 4) if cls is nn.GroupNorm else cls()
        assert not isinstance(module, stateful), cls


def test_hf_fingerprint_is_stable_across_loads_and_changes_with_the_content(tmp_path):
    import datasets  # the [hf] extra, in .[dev]

    datasets.Dataset.from_dict({"label": [0, 1, 1]}).save_to_disk(tmp_path / "a")
    datasets.Dataset.from_dict({"label": [1, 0, 0]}).save_to_disk(tmp_path / "b")
    first, again = (compat.hf_fingerprint(datasets.load_from_disk(tmp_path / "a")) for _ in "12")
    assert first == again  # a second run's load keys the feature cache the same
    assert compat.hf_fingerprint(datasets.load_from_disk(tmp_path / "b")) != first
