"""Seeds syncs through the REST API, then times sequential signed-in page requests.

Latency is measured at the client over one keep-alive loopback connection, so it is the
server's time plus a few tens of microseconds of Python and TCP: an upper bound.
"""

import argparse
import http.client
import json
import sys
import time
import urllib.parse


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--syncs", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    url = urllib.parse.urlparse(args.base)
    conn = Client(url.hostname, url.port)

    deadline = time.monotonic() + 60
    while True:
        try:
            if conn.request("GET", "/api/v1/health")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            print("the server did not answer /api/v1/health within 60 s", file=sys.stderr)
            return 1
        time.sleep(0.1)

    status, _ = conn.request("POST", "/api/v1/session", {"username": "admin", "password": "admin"})
    assert status == 200, f"sign-in failed: {status}"

    ids = []
    for name in ("bench source", "bench destination"):
        status, body = conn.request(
            "POST",
            "/api/v1/datasources",
            {"name": name, "kind": "sqlite",
             "connection_string": f"sqlite://{args.workdir}/{name.split()[1]}.db"},
        )
        assert status == 201, f"creating a data source failed: {status} {body}"
        ids.append(json.loads(body)["id"])

    start = time.monotonic()
    for i in range(args.syncs):
        status, body = conn.request("POST", "/api/v1/syncs", {
            "name": f"orders {i:04}",
            "source": {"datasource_id": ids[0], "table": f"orders_{i}"},
            "destination": {"datasource_id": ids[1], "table": f"orders_{i}"},
            "mode": "by_id",
            "key_columns": ["id"],
        })
        assert status == 201, f"creating sync {i} failed: {status} {body}"
    print(f"seeded {args.syncs} syncs through the API in {time.monotonic() - start:.1f} s")

    status, body = conn.request("GET", "/api/v1/syncs")
    assert status == 200 and len(json.loads(body)) == args.syncs

    # The pages as a browser first loads them (server-rendered), and the server function the
    # Syncs page calls as the user types in Search.
    for label, method, path, form, marker in (
        ("dashboard", "GET", "/", None, "Dashboard"),
        ("syncs page", "GET", "/syncs", None, "orders 0000"),
        ("syncs search", "POST", "/api/syncs/page", "search=orders+0999&page=0", "orders 0999"),
    ):
        for _ in range(20):  # warm up
            conn.request(method, path, form=form)
        times = []
        for _ in range(args.requests):
            t = time.perf_counter()
            status, body = conn.request(method, path, form=form)
            times.append((time.perf_counter() - t) * 1000)
            if status != 200:
                print(f"{label}: HTTP {status}", file=sys.stderr)
                return 1
        if marker not in body:
            print(f"{label}: the page does not show {marker!r}", file=sys.stderr)
            return 1
        times.sort()
        p50 = times[len(times) // 2]
        p99 = times[int(len(times) * 0.99) - 1]
        verdict = "meets" if p50 <= 10 else "MISSES"
        print(f"{label:13} {args.requests} requests, {len(body)} bytes: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {times[-1]:.2f} ms "
              f"({verdict} the p50 <= 10 ms target)")
    return 0


class Client:
    """One keep-alive connection that carries the session cookie."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.cookie = None

    def request(self, method: str, path: str, body=None, form=None):
        headers = {"Host": f"{self.host}:{self.port}"}
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        if form is not None:
            data = form
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookie:
            headers["Cookie"] = self.cookie
        try:
            self.conn.request(method, path, data, headers)
            resp = self.conn.getresponse()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            raise
        text = resp.read().decode("utf-8", "replace")
        cookie = resp.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";")[0]
        return resp.status, text


if __name__ == "__main__":
    sys.exit(main())
