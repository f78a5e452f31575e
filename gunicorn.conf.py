"""gunicorn's settings wherever the web process runs (Procfile, Procfile.dev, dev.py up, the tests): gunicorn
reads this file from the folder it starts in. Its own lines come out as JSON, like the app's. Options given on
the command line (`--workers`, `--bind`, ...) still win over these."""

from fulfillment.logs import gunicorn_logconfig

logconfig_dict = gunicorn_logconfig()

# gevent: a connection waiting on a slow client is a parked greenlet, not a thread. With threads (gthread), a
# few dozen clients that stop mid-body hold every thread and /healthz stops answering; here each worker keeps
# up to `worker_connections` of them and goes on serving everyone else.
worker_class = "gevent"
worker_connections = 1000
# A worker whose loop is blocked this long is restarted; a request that waits on a slow client does not block it.
timeout = 30
graceful_timeout = 20
# Behind a proxy that keeps connections to us open, keep-alive must outlast the proxy's idle interval only briefly.
keepalive = 5

# The access log names the path, never the query string: OAuth redirects carry a code and an hmac, and the store's
# signed pulls carry their signature there. The referrer is left out for the same reason.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'

# gunicorn's runtime control socket sits at one path per user: several instances on a host would share it.
control_socket_disable = True
