"""The maintainers' results page: `make results` runs the offline experiments through the
clone's train.py, rank.py and study.py and writes docs/results.md. Not part of the package:
it stands above the command line and reads run folders with transferlab.report."""
