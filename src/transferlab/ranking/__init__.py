"""`python rank.py`: backbones ranked for a dataset from one cached feature pass each."""
