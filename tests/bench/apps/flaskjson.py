"""A Flask JSON endpoint (Debian's python3-flask), the same for every server."""
from flask import Flask, jsonify

app = Flask(__name__)
application = app


@app.route("/json")
def json_endpoint():
    return jsonify(message="Hello, World!", items=[1, 2, 3], ok=True)
