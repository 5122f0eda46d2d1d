"""Checks on a composed config that run before torch is imported or anything is built.

`commands` holds what train.py and eval.py check. The other modules follow the config
groups (data, model, mode, augmentation, options), plus the typo check of the command line
(`overrides`). They read the shipped model facts (`transferlab.model_facts`) and weights
files' headers (`transferlab.weights_files`); this package only validates. Each error is
built next to the check that raises it; builders that find the same mistake later reuse it.
"""
