"""Loaded with wsgi-file: imports a sibling module from its own directory."""
import json

from sibling import WHO


def application(environ, start_response):
    body = json.dumps({"who": WHO, "name": __name__, "script_name": environ["SCRIPT_NAME"],
                       "path_info": environ["PATH_INFO"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def other(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"other callable"]
