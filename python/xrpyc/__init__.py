"""xrpyc: a Jupyter kernel whose cells run on a remote Python device over rpyc."""

__version__ = "0.1.0"
