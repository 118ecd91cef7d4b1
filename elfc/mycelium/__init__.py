"""The mycelium: the database that submitters and workers share.

* ``store.py``: :class:`Store`, the contract every backend implements (its docstrings say what
  each operation does, returns and guarantees);
* ``common.py``: the job state machine's rules that need no database, written once;
* ``urls.py``: ``open_mycelium(url)``, the default URL, passwords in URLs;
* ``sqlite/`` and ``arango/``: one backend each, only its queries and driver code.

Records and statuses are not defined here: see :mod:`elfc.model.records` and
:mod:`elfc.model.status`.
"""
