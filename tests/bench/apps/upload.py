"""Reads the whole request body (the 1 MB POST scenario) and answers its size."""


def application(environ, start_response):
    stream = environ["wsgi.input"]
    left = int(environ.get("CONTENT_LENGTH") or 0)
    total = 0
    while left > 0:
        chunk = stream.read(min(left, 65536))
        if not chunk:
            break
        total += len(chunk)
        left -= len(chunk)
    body = str(total).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
