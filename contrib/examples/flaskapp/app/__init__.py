"""A small Flask app served by wharf (contrib/examples/flaskapp).

    GET  /api/hello        JSON greeting
    GET  /api/items        JSON list of items
    POST /api/items        add an item from a JSON body {"name": ..., "qty": ...}
    GET  /form             an HTML form; POST /form handles it
    GET  /download         a file download (send_file: sent with sendfile(2))
    GET  /stream           a streamed response (a generator, chunked)
    GET  /static/...       served by wharf's static plugin (static-map)
    GET  /healthz/live     answered by wharf's route plugin, never reaches Flask

Items live in memory, per worker process: with processes = 2 each worker
has its own list (a real app keeps them in a database).
"""
import os
import threading
import time

from flask import Flask, Response, jsonify, render_template_string, request, send_file, stream_with_context
from markupsafe import escape

HERE = os.path.dirname(os.path.abspath(__file__))

INDEX = """<!doctype html>
<html><head><title>wharf example</title><link rel="stylesheet" href="/static/style.css"></head>
<body><h1>wharf serves Flask</h1>
<ul>
<li><a href="/api/hello">/api/hello</a></li>
<li><a href="/api/items">/api/items</a></li>
<li><a href="/form">/form</a></li>
<li><a href="/download">/download</a></li>
<li><a href="/stream">/stream</a></li>
</ul></body></html>
"""

FORM = """<!doctype html>
<html><head><title>form</title></head><body>
<form method="post" action="/form">
<label>Name <input name="name"></label>
<label>Message <textarea name="message"></textarea></label>
<button type="submit">Send</button>
</form></body></html>
"""


def create_app(config=None):
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=1 << 20, DOWNLOAD=os.path.join(HERE, "data", "report.csv"))
    if config:
        app.config.update(config)

    items = [{"id": 1, "name": "anchor", "qty": 2}, {"id": 2, "name": "rope", "qty": 10}]
    lock = threading.Lock()

    @app.get("/")
    def index():
        return INDEX

    @app.get("/api/hello")
    def hello():
        return jsonify(message="Hello from wharf", worker_pid=os.getpid(),
                       server=request.environ.get("SERVER_SOFTWARE", "wharf"))

    @app.get("/api/items")
    def list_items():
        with lock:
            return jsonify(items=list(items))

    @app.post("/api/items")
    def add_item():
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"].strip():
            return jsonify(error='expected a JSON object like {"name": "sail", "qty": 1}'), 400
        qty = data.get("qty", 1)
        if not isinstance(qty, int) or qty < 0:
            return jsonify(error="qty must be a non-negative integer"), 400
        with lock:
            item = {"id": max((i["id"] for i in items), default=0) + 1, "name": data["name"].strip(),
                    "qty": qty}
            items.append(item)
        return jsonify(item), 201, {"Location": f"/api/items/{item['id']}"}

    @app.get("/form")
    def form():
        return FORM

    @app.post("/form")
    def form_post():
        name = request.form.get("name", "").strip() or "stranger"
        message = request.form.get("message", "")
        return render_template_string(
            "<!doctype html><p>Thanks, {{ name }}! You wrote {{ n }} characters.</p>", name=name,
            n=len(message))

    @app.get("/download")
    def download():
        return send_file(app.config["DOWNLOAD"], mimetype="text/csv", as_attachment=True,
                         download_name="report.csv")

    @app.get("/stream")
    def stream():
        count = min(int(request.args.get("n", "5")), 1000)
        delay = min(float(request.args.get("delay", "0")), 1.0)

        @stream_with_context
        def generate():
            for i in range(count):
                yield f"line {i} of {count} from {request.path}\n"
                if delay:
                    time.sleep(delay)

        return Response(generate(), mimetype="text/plain")

    @app.errorhandler(413)
    def too_large(e):
        return jsonify(error="request body too large"), 413

    return app
