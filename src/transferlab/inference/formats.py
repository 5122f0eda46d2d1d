"""export.py's formats and the file each writes (torch-free: the config check reads it)."""

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt", "safetensors": "model.safetensors"}
