from collections.abc import MutableMapping

from arango.cursor import Cursor

class AQL:
    def execute(
        self,
        query: str,
        count: bool = ...,
        batch_size: int | None = ...,
        ttl: float | None = ...,
        bind_vars: MutableMapping[str, object] | None = ...,
    ) -> Cursor: ...
