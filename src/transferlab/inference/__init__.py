"""Using a trained run: predict on new images (predict.py), export the network (export.py).

`inputs` lists what to predict on, torch-free, so a wrong path is refused before torch
loads; `network` reads a checkpoint's network and how it prepares inputs.
"""
