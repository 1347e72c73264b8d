"""Harness (layer 4): the experiments' registry, executors and runner, reports and figures, and the
compute options of every command line. Imports only from the layers below."""
