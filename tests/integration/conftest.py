import pytest

from wharfctl import Wharf


@pytest.fixture
def wharf(tmp_path):
    """Factory: wharf(options_dict_or_list, **kw) -> started Wharf.

    Every server started through it is stopped after the test, and its log
    is checked for sanitizer reports and unexpected errors."""
    servers = []

    def start(options=None, start=True, **kw):
        srv = Wharf(tmp_path, options=options, **kw)
        servers.append(srv)
        return srv.start() if start else srv

    yield start
    failures = []
    for srv in servers:
        try:
            srv.stop()
        except AssertionError as e:
            failures.append(str(e))
        finally:
            srv.kill_group()
        try:
            srv.check_log()
        except AssertionError as e:
            failures.append(str(e))
    if failures:
        pytest.fail("\n\n".join(failures))

# real PostgreSQL and Redis servers (tests/integration/services.py)
from services import postgres, redis_factory, redis_server  # noqa: E402,F401
