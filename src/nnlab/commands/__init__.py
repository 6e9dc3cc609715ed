"""Implementations of the ``nnlab`` subcommands, one module each (registered in :mod:`nnlab.cli`)."""
