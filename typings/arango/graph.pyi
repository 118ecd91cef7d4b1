from collections.abc import Sequence

class Graph:
    @property
    def name(self) -> str: ...
    def has_edge_definition(self, name: str) -> bool: ...
    def create_edge_definition(
        self,
        edge_collection: str,
        from_vertex_collections: Sequence[str],
        to_vertex_collections: Sequence[str],
    ) -> object: ...
