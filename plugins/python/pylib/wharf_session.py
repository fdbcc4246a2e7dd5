"""Server-side sessions stored by wharf's redis_session plugin.

The plugin attaches the lazy request variable ``session``; the python plugin
shows it as ``environ['wharf.session']``, a ``wharf.LazyVar`` whose
``load()``/``store()``/``delete()``/``regenerate()`` talk to Redis (with the
GIL released).  This module puts a dict on top of it:

    from wharf_session import Session
    s = Session(environ['wharf.session'])
    s['user'] = 42          # nothing happens in Redis until...
    s.save()                # ...this, and only because something changed

and gives Flask the same with one line:

    from wharf_session import WharfSessionInterface
    app.session_interface = WharfSessionInterface()

Rules the plugin and this module keep between them:

* Redis is read only when the app touches the session (first access), once
  per request, and written only when the data changed.  A request that never
  looks at ``session`` costs no Redis command.
* Values are JSON (str, int, float, bool, None, lists and dicts of them),
  like Flask's default cookie session, so no pickle ever runs on data that
  an attacker could have placed in Redis.
* The cookie is the plugin's business (id, Max-Age, HttpOnly, SameSite,
  Secure): save before the response starts (Flask does) so the plugin can
  send it.
* When Redis is down the session is empty and ``save()`` does nothing: the
  request is still served (the plugin logs a rate-limited warning and the
  readiness check reports it).
"""
import json
from collections.abc import MutableMapping

__all__ = ["Session", "WharfSessionInterface"]


class Session(MutableMapping):
    """A dict-like session over a ``wharf.LazyVar``.

    ``modified`` tells whether the data changed (assignments, deletions,
    ``clear()``; mutate nested values in place? set ``modified = True``
    yourself, as with Flask).  ``accessed`` tells whether it was read at all.
    """

    def __init__(self, var):
        self._var = var
        self._data = None
        self.modified = False
        self.accessed = False
        self.new = False

    # -- loading -------------------------------------------------------
    def _load(self):
        self.accessed = True
        if self._data is None:
            raw = self._var.load() if self._var is not None else None
            data = {}
            if raw:
                try:
                    data = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    data = {}
                if not isinstance(data, dict):
                    data = {}
            self.new = not data
            self._data = data
        return self._data

    @property
    def loaded(self):
        return self._data is not None

    # -- mapping -------------------------------------------------------
    def __getitem__(self, key):
        return self._load()[key]

    def __setitem__(self, key, value):
        self._load()[key] = value
        self.modified = True

    def __delitem__(self, key):
        del self._load()[key]
        self.modified = True

    def __iter__(self):
        return iter(self._load())

    def __len__(self):
        return len(self._load())

    def __contains__(self, key):
        return key in self._load()

    def __repr__(self):
        state = repr(self._data) if self._data is not None else "(not loaded)"
        return f"<{type(self).__name__} {state}{' modified' if self.modified else ''}>"

    def clear(self):
        """Empty the session; saved (as a deletion) by save()."""
        if self._load():
            self._data.clear()
            self.modified = True

    # -- persistence -----------------------------------------------------
    def save(self):
        """Store the data when it changed; an emptied session is deleted.
        Returns True when Redis was written."""
        if not self.modified or self._var is None:
            return False
        self.modified = False
        if not self._data:
            return bool(self._var.delete())
        raw = json.dumps(self._data, separators=(",", ":"), sort_keys=True).encode("utf-8")
        return bool(self._var.store(raw))

    def delete(self):
        """Log out: drop the session in Redis and expire the cookie."""
        self._data = {}
        self.modified = False
        self.accessed = True
        if self._var is None:
            return False
        return bool(self._var.delete())

    def regenerate(self):
        """Keep the data under a new session id (do it at login, against
        session fixation).  Pending changes are saved under the new id."""
        self._load()
        if self._var is None:
            return False
        ok = bool(self._var.regenerate())
        if self.modified:
            self.save()
        return ok


try:
    from flask.sessions import SessionInterface, SessionMixin
except ImportError:  # Flask is optional: Session works without it
    SessionInterface = SessionMixin = None

if SessionInterface is not None:

    class WharfSession(Session, SessionMixin):
        """``flask.session`` backed by Redis through wharf."""

        # SessionMixin defines these as class attributes; ours are per instance
        def __init__(self, var):
            Session.__init__(self, var)

        @property
        def permanent(self):
            return self.get("_permanent", False)

        @permanent.setter
        def permanent(self, value):
            self["_permanent"] = bool(value)

    class WharfSessionInterface(SessionInterface):
        """``app.session_interface = WharfSessionInterface()``.

        open_session wraps ``environ['wharf.session']`` (nothing is read from
        Redis yet); save_session stores it when it was modified.  The cookie
        is set by the redis_session plugin, not here.  Without the plugin
        (no ``wharf.session`` in the environ, e.g. under the Flask dev
        server) Flask gets its null session, which refuses writes.
        """

        def open_session(self, app, request):
            var = request.environ.get("wharf.session")
            if var is None:
                return None
            return WharfSession(var)

        def save_session(self, app, session, response):
            if isinstance(session, Session) and session.modified:
                session.save()
            if isinstance(session, Session) and session.accessed:
                response.vary.add("Cookie")
else:  # pragma: no cover
    WharfSession = WharfSessionInterface = None
