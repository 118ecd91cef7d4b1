from collections.abc import MutableMapping

class Response:
    def __init__(
        self,
        method: str,
        url: str,
        headers: MutableMapping[str, str],
        status_code: int,
        status_text: str,
        raw_body: str,
    ) -> None: ...
