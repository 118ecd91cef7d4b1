from collections.abc import MutableMapping
from typing import Any

from arango.response import Response

class HTTPClient:
    def create_session(self, host: str) -> Any: ...
    def send_request(
        self,
        session: Any,
        method: str,
        url: str,
        headers: MutableMapping[str, str] | None = ...,
        params: MutableMapping[str, str] | None = ...,
        data: str | bytes | None = ...,
        auth: tuple[str, str] | None = ...,
    ) -> Response: ...

class DefaultHTTPClient(HTTPClient):
    request_timeout: float | None
    def __init__(
        self,
        request_timeout: float | None = ...,
        retry_attempts: int = ...,
        backoff_factor: float = ...,
        pool_connections: int = ...,
        pool_maxsize: int = ...,
        pool_timeout: float | None = ...,
    ) -> None: ...
