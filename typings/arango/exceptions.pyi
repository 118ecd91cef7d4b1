class ArangoError(Exception): ...

class ArangoClientError(ArangoError):
    message: str

class ArangoServerError(ArangoError):
    message: str
    error_code: int | None
    error_message: str | None
    http_code: int | None
