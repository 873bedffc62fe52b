"""Container health probe: exit 0 when /api/health answers 200, else 1.

Used by the image's HEALTHCHECK (``python3 -m mlapi.healthcheck``), so the
image needs no curl. The port follows GUNICORN_BIND when it is host:port.
"""

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = 8000


def health_url(environ):
    bind = environ.get("GUNICORN_BIND", "")
    port = bind.rsplit(":", 1)[-1] if ":" in bind and not bind.startswith("unix:") else ""
    return f"http://127.0.0.1:{port if port.isdigit() else DEFAULT_PORT}/api/health"


def main():
    url = health_url(os.environ)
    # An empty ProxyHandler: an http_proxy variable must not reroute a loopback probe.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"unhealthy: {url}: {error}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
