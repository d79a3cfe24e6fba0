#!/usr/bin/env python3
"""A small real HTTP file server for the local stack.

It serves a directory like `python -m http.server` (GET/HEAD with
Content-Length, Last-Modified and Range-free full bodies) and adds two things
the runner's HTTP connector needs and a plain directory index lacks:

* a machine-readable listing: `GET /_listing.json?path=/procedures` (or any
  directory URL with `Accept: application/json`) returns
  {"path": ..., "entries": [{"name", "path", "type", "size", "mtime"}...]};
  `recursive=1` lists the whole subtree;
* `GET /healthz` for the stack's health checks.

Standard library only, so it runs on Debian's python3 without a venv.
"""

import argparse
import json
import os
import posixpath
import sys
import urllib.parse
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class Handler(SimpleHTTPRequestHandler):
    server_version = "TributaryFileServer/1"

    def log_message(self, fmt, *args):  # one line per request to the log file
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            return self._send_json({"status": "ok"})
        if url.path == "/_listing.json":
            query = urllib.parse.parse_qs(url.query)
            rel = query.get("path", ["/"])[0]
            recursive = query.get("recursive", ["0"])[0] in ("1", "true", "yes")
            return self._listing(rel, recursive)
        if "application/json" in self.headers.get("Accept", "") and os.path.isdir(
            self.translate_path(url.path)
        ):
            return self._listing(urllib.parse.unquote(url.path), False)
        return super().do_GET()

    def _listing(self, rel, recursive):
        rel = "/" + posixpath.normpath("/" + rel).lstrip("/")
        full = self.translate_path(urllib.parse.quote(rel))
        if not os.path.isdir(full):
            return self._send_json({"error": "not a directory", "path": rel}, status=404)
        entries = []
        for dirpath, dirnames, filenames in os.walk(full):
            dirnames.sort()
            base = "/" + os.path.relpath(dirpath, self.directory).replace(os.sep, "/")
            base = "/" if base == "/." else base
            for name in dirnames + sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                is_dir = name in dirnames
                entries.append(
                    {
                        "name": name,
                        "path": posixpath.join(base, name),
                        "type": "directory" if is_dir else "file",
                        "size": 0 if is_dir else st.st_size,
                        "mtime": int(st.st_mtime),
                    }
                )
            if not recursive:
                break
        return self._send_json({"path": rel, "entries": entries})

    def _send_json(self, obj, status=200):
        body = json.dumps(obj, indent=1).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=18080)
    p.add_argument("--root", required=True)
    args = p.parse_args()
    root = os.path.abspath(args.root)
    server = ThreadingHTTPServer((args.bind, args.port), partial(Handler, directory=root))
    server.daemon_threads = True
    print(f"serving {root} on http://{args.bind}:{args.port}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
