"""`xrpyc-device`: an rpyc classic-compatible device server."""

from .server import main

__all__ = ["main"]
