"""Flask-Security's own test suite, run on kitsession (see ``run.py``)."""
