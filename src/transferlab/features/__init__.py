"""Backbone features: multi-layer extraction, the on-disk cache, classical heads (SVM, logreg)."""
