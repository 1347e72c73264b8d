"""Interfaces (layer 5): the Python API, the command line and the web app, on top of the other
layers."""
