"""App threads: requests on N threads per worker, the GIL released while
the server does I/O, and 100 concurrent keep-alive clients."""
import hashlib
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps"))
from pyharness import app_options, get  # noqa: E402


def test_requests_run_on_several_threads_in_parallel(wharf):
    srv = wharf(app_options(threads=4))
    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as ex:
        res = list(ex.map(lambda _: requests.get(srv.url + "/sleep?s=0.5").json(), range(4)))
    took = time.monotonic() - t0
    assert len({r["thread"] for r in res}) == 4
    assert took < 1.9, f"4 x 0.5 s on 4 threads took {took:.2f} s (2 s or more: one at a time)"


def test_thread_state_is_kept_per_thread(wharf):
    """Each app thread keeps one Python thread state: the same thread
    ident and name come back, and threading.local values survive."""
    srv = wharf(app_options(threads=2))
    idents = set()
    with ThreadPoolExecutor(4) as ex:
        for r in ex.map(lambda _: requests.get(srv.url + "/whoami").json(), range(40)):
            idents.add((r["thread"], r["thread_name"]))
    assert 1 <= len(idents) <= 2


def test_slow_upload_does_not_block_other_requests(wharf):
    """The GIL is released while wsgi.input waits for the client."""
    srv = wharf(app_options(threads=2))
    s = srv.connect()
    s.sendall(b"POST /input/read HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    time.sleep(0.2)
    t0 = time.monotonic()
    for _ in range(5):
        assert get(srv, "/hello")[0].status == 200
    assert time.monotonic() - t0 < 3.0  # with the GIL held they would wait for the upload
    s.sendall(b"defghij")
    data = b""
    while b"md5" not in data:
        data += s.recv(4096)
    assert hashlib.md5(b"abcdefghij").hexdigest().encode() in data
    s.close()


def test_100_concurrent_keepalive_clients(wharf):
    """2 workers x 8 threads, 100 clients each on its own kept-alive
    connection, mixing small responses, streamed ones and uploads."""
    srv = wharf(app_options(processes=2, threads=8))
    errors = []
    pids = set()
    lock = threading.Lock()
    body = os.urandom(20000)
    digest = hashlib.md5(body).hexdigest()

    def client(i):
        s = requests.Session()
        try:
            for k in range(20):
                kind = (i + k) % 4
                if kind == 0:
                    r = s.get(srv.url + "/hello")
                    ok = r.status_code == 200 and r.content == b"Hello, World!\n"
                elif kind == 1:
                    r = s.get(srv.url + "/gen?n=10")
                    ok = r.status_code == 200 and r.content.count(b"chunk") == 10
                elif kind == 2:
                    r = s.post(srv.url + "/input/read", data=body)
                    ok = r.status_code == 200 and r.json()["md5"] == digest
                else:
                    r = s.get(srv.url + "/whoami")
                    ok = r.status_code == 200
                    with lock:
                        pids.add(r.json()["pid"])
                if not ok:
                    with lock:
                        errors.append((i, k, r.status_code, r.content[:100]))
        except Exception as e:  # noqa: BLE001
            with lock:
                errors.append((i, repr(e)))
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(100)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a client is stuck"
    assert errors == []
    assert len(pids) == 2
    assert time.monotonic() - t0 < 60
    # nothing left in flight: a new request is answered at once
    r, data = get(srv, "/hello", timeout=5)
    assert r.status == 200
    assert "died" not in srv.log()


def test_multithread_errors_stay_per_request(wharf):
    """Errors on some threads do not disturb requests on others."""
    srv = wharf(app_options(threads=4), allowed_errors=[r"unhandled exception"])

    def one(i):
        path = "/error" if i % 3 == 0 else "/hello"
        r = requests.get(srv.url + path)
        return path, r.status_code

    with ThreadPoolExecutor(8) as ex:
        for path, status in ex.map(one, range(60)):
            assert status == (500 if path == "/error" else 200)


def test_wsgi_errors_lines_do_not_mix_across_threads(wharf):
    srv = wharf(app_options(threads=4))
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda i: requests.get(srv.url + f"/errors?id=t{i}"), range(40)))
    srv.wait_log("errors-line-1 from t39")
    log = srv.log()
    for i in range(40):
        assert f"errors-line-1 from t{i}\n" in log
    assert log.count("errors-partial continued\n") == 40


def test_streaming_on_threads(wharf):
    srv = wharf(app_options(threads=4))
    with ThreadPoolExecutor(4) as ex:
        res = list(ex.map(lambda _: requests.get(srv.url + "/gen-slow").content, range(4)))
    assert all(r == b"tick 0\ntick 1\ntick 2\n" for r in res)
    assert json.loads(get(srv, "/env")[1])["wsgi.multithread"] == ["bool", True]
