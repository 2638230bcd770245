"""Training side of the data loop: synthetic scenes, the compact model, trainer and export.

Needs torch (installed by `make setup`, CPU build); nothing here is imported by the node.
"""
