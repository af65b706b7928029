"""Flask's own session tests, run on kitsession (see ``run.py``)."""
