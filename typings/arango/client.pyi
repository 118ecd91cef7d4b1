from collections.abc import Callable, Sequence
from typing import Any

from arango.database import StandardDatabase
from arango.http import HTTPClient

class ArangoClient:
    def __init__(
        self,
        hosts: str | Sequence[str] = ...,
        host_resolver: str = ...,
        resolver_max_tries: int | None = ...,
        http_client: HTTPClient | None = ...,
        serializer: Callable[[Any], str] = ...,
        deserializer: Callable[[str], Any] = ...,
        verify_override: bool | str | None = ...,
        request_timeout: float | None = ...,
    ) -> None: ...
    @property
    def hosts(self) -> Sequence[str]: ...
    def close(self) -> None: ...
    def db(
        self,
        name: str = ...,
        username: str = ...,
        password: str = ...,
        verify: bool = ...,
    ) -> StandardDatabase: ...
