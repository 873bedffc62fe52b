"""Instructions per prediction request of the Flask app itself (no Gunicorn,
no socket: WSGI calls in one process, metrics off), counted by valgrind
(callgrind), so that two versions of the app compare on a busy machine.

    python bench/app_instructions.py [--app DIR] [--models DIR] [--requests 3000]

--app is an app/ folder (default this checkout's), --models its model
directory (default this checkout's models/); run it with the Python of a venv
holding that app's requirements. bench/ab-main.sh leaves such a pair for the
old main: AB_KEEP=1, then

    /tmp/ab-venv-old/bin/python bench/app_instructions.py --app /tmp/ab-old/app --models /tmp/ab-old-models

The request is the tutorial's record POSTed to
/api/v1/models/decision-tree-classifier/predictions; each run makes
--requests and 500 requests in two processes under callgrind, and the
difference over (requests - 500) is the cost of one, start-up excluded.
Needs valgrind (Debian package valgrind).
"""

import argparse
import io
import json
import os
import sys

from callgrind import instructions

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ROUTE = "/api/v1/models/decision-tree-classifier/predictions"
BODY = json.dumps({"monthly_fee": 60, "customer_age": 30, "support_calls": 1}).encode()


def child(app_dir, model_dir, requests):
    sys.path.insert(0, app_dir)
    os.environ.update(MLAPI_MODEL_DIR=model_dir, MLAPI_METRICS_PORT="0")
    from mlapi.app import create_app

    app = create_app()

    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise SystemExit(f"the app answered {status}")

    for _ in range(requests):
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": ROUTE, "QUERY_STRING": "", "SERVER_NAME": "bench",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "HTTP_HOST": "bench",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(BODY)), "wsgi.input": io.BytesIO(BODY),
            "wsgi.errors": sys.stderr,
        }
        b"".join(app.wsgi_app(environ, start_response))


def requests_instructions(app_dir, model_dir, requests):
    return instructions([sys.executable, __file__, "--child", "--app", app_dir, "--models", model_dir,
                         "--requests", str(requests)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", default=os.path.join(REPO, "app"))
    parser.add_argument("--models", default=os.path.join(REPO, "models"))
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        return child(args.app, args.models, args.requests)
    if args.requests <= 500:
        parser.error("--requests must be over 500")
    many = requests_instructions(args.app, args.models, args.requests)
    few = requests_instructions(args.app, args.models, 500)
    print(f"{(many - few) / (args.requests - 500):.0f} instructions per request: {args.app} ({args.models})")


if __name__ == "__main__":
    main()
