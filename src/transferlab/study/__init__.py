"""The study: the decision grid fitted to a time budget, run, and turned into a verdict page."""
