"""transferlab: which wins on your dataset — scratch, fine-tuning or frozen features?"""

__version__ = "0.1.0"
