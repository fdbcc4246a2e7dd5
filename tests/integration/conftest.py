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


# Numbers a reader of the CI log wants without -s (the counts of a whole
# deploy, how long a reload took): report(line) collects them, and they are
# printed in a "measured" section at the end of the run.
_MEASURED = []


@pytest.fixture
def report(request):
    def add(line):
        print(line)
        _MEASURED.append(f"{request.node.name}: {line}")
    return add


def pytest_terminal_summary(terminalreporter):
    if _MEASURED:
        terminalreporter.section("measured")
        for line in _MEASURED:
            terminalreporter.write_line(line)
