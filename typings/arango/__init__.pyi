# Stubs for the subset of python-arango (8.x) that elfc uses. They replace the package's own
# inline hints under mypy (mypy_path = "typings"): those type every result as a union with
# async/batch job types and None, type bind_vars with numbers.Number, and make
# `from arango import ArangoClient` fail mypy's re-export check. Every signature here is
# checked against the installed package by tests/mycelium/test_arango_offline.py.
from arango.client import ArangoClient as ArangoClient

__all__ = ["ArangoClient"]
