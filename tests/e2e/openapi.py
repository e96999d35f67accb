"""Check real REST answers against api/openapi.yaml (the contract of record).

    import openapi
    api = openapi.Client("http://127.0.0.1:9000")        # token=... when needed
    routes = api.get("/routes")                          # 200, validated, parsed JSON
    st, body = api.call("POST", "/failover", {"to": "b"}) # any status, validated
    api.expect_error("POST", "/failover", 409, "conflict", {"to": "down-node"})
    for name, data in api.events(max_events=5): ...      # /events, each event validated

Every answer is checked for: a status the operation lists (or its `default`), the
content type of that response, the body against its schema (OpenAPI 3.0: `nullable`,
`$ref`, `allOf` and `additionalProperties` honoured, `format: date-time` checked), an
error body's code matching its status as shared/result.c maps them, `Allow` on 405 and
`WWW-Authenticate` on 401. A mismatch raises AssertionError saying what and where.
"""
import datetime
import http.client
import json
import os
import re
import socket
import urllib.parse

import jsonschema
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEC_PATH = os.path.join(ROOT, "api", "openapi.yaml")
RESULT_C = os.path.join(ROOT, "shared", "result.c")


def _error_statuses():
    """code -> HTTP status, read from shared/result.c (the one mapping)."""
    out = {}
    with open(RESULT_C) as f:
        for m in re.finditer(r'\[LS_RC_\w+\]\s*=\s*\{\s*"(\w+)",\s*(\d+)\s*\}', f.read()):
            out[m.group(1)] = int(m.group(2))
    return out


def _date_time(value):
    if not isinstance(value, str):
        return True
    v = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        datetime.datetime.fromisoformat(v)
    except ValueError:
        return False
    return "T" in value and (value.endswith("Z") or re.search(r"[+-]\d\d:\d\d$", value))


_FORMATS = jsonschema.FormatChecker(formats=())
_FORMATS.checks("date-time")(_date_time)


class Spec:
    def __init__(self, path=SPEC_PATH):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.codes = _error_statuses()
        self.ops = []  # (regex, template, {method: operation})
        for template, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\\\{[A-Za-z_]+\\\}", "[^/]+", re.escape(template)) + "$"
            methods = {m.upper(): op for m, op in item.items()
                       if m in ("get", "post", "put", "delete", "patch")}
            self.ops.append((re.compile(rx), template, methods))
        self._cache = {}

    # OpenAPI 3.0 schema -> JSON Schema: $ref inlined, nullable turned into a type union.
    def _resolve(self, ref):
        assert ref.startswith("#/"), "only local $ref: %s" % ref
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part]
        return node

    def to_json_schema(self, s, depth=0):
        assert depth < 64, "recursive schema"
        if isinstance(s, list):
            return [self.to_json_schema(x, depth + 1) for x in s]
        if not isinstance(s, dict):
            return s
        if "$ref" in s:
            base = self.to_json_schema(self._resolve(s["$ref"]), depth + 1)
            rest = {k: v for k, v in s.items() if k != "$ref"}
            if not rest:
                return base
            return self.to_json_schema({"allOf": [base], **rest}, depth + 1)
        out = {}
        for k, v in s.items():
            if k in ("description", "summary", "example", "nullable"):
                continue
            if k == "properties":
                out[k] = {n: self.to_json_schema(p, depth + 1) for n, p in v.items()}
            else:
                out[k] = self.to_json_schema(v, depth + 1)
        if s.get("nullable"):
            return {"anyOf": [{"type": "null"}, out]}
        return out

    def schema(self, ref_or_schema):
        key = json.dumps(ref_or_schema, sort_keys=True)
        if key not in self._cache:
            self._cache[key] = jsonschema.Draft7Validator(
                self.to_json_schema(ref_or_schema), format_checker=_FORMATS)
        return self._cache[key]

    def validate(self, schema, value, where):
        errors = sorted(self.schema(schema).iter_errors(value), key=lambda e: list(e.path))
        if errors:
            lines = ["%s: %s at /%s" % (where, e.message, "/".join(str(p) for p in e.path))
                     for e in errors[:8]]
            raise AssertionError("answer does not match api/openapi.yaml:\n  " +
                                 "\n  ".join(lines) + "\n  body: " +
                                 json.dumps(value)[:2000])

    def operation(self, method, path):
        path = urllib.parse.urlsplit(path).path
        for rx, template, methods in self.ops:
            if rx.match(path):
                m = "GET" if method == "HEAD" else method
                return template, methods.get(m)
        return None, None

    def check(self, method, path, status, headers, body):
        """Validate one answer; returns the parsed JSON body (or the text)."""
        headers = {k.lower(): v for k, v in headers.items()}
        ctype = headers.get("content-type", "").split(";")[0].strip()
        where = "%s %s -> %d" % (method, path, status)
        template, op = self.operation(method, path)
        if op is None:
            # Not an operation of the contract: the server must say so with an error.
            assert status in (404, 405), "%s: no such operation in the spec" % where
            return self._check_error(where, status, headers, ctype, body)
        responses = op["responses"]
        resp = responses.get(str(status)) or responses.get("default")
        assert resp is not None, "%s: status %d not in the spec (it lists %s)" % (
            where, status, ", ".join(responses))
        if "$ref" in resp:
            resp = self._resolve(resp["$ref"])
        content = resp.get("content", {})
        assert ctype in content, "%s: content type %r, the spec says %s" % (
            where, ctype, ", ".join(content))
        if ctype != "application/json":
            return body.decode("utf-8")
        value = self._json(where, body)
        schema = content[ctype]["schema"]
        self.validate(schema, value, where)
        # An error answer is an Error body; a status listed with a schema of its own
        # (GET /health's 503 is a Health body) is checked against that schema only.
        if status >= 400 and schema.get("$ref") == "#/components/schemas/Error":
            self._check_error(where, status, headers, ctype, body)
        return value

    def _json(self, where, body):
        try:
            return json.loads(body)
        except ValueError as e:
            raise AssertionError("%s: body is not JSON (%s): %r" % (where, e, body[:200]))

    def _check_error(self, where, status, headers, ctype, body):
        assert ctype == "application/json", "%s: error with content type %r" % (where, ctype)
        value = self._json(where, body)
        self.validate({"$ref": "#/components/schemas/Error"}, value, where)
        code = value["error"]["code"]
        assert self.codes.get(code) == status, "%s: code %s belongs with status %s" % (
            where, code, self.codes.get(code))
        if status == 405:
            assert headers.get("allow"), "%s: 405 without Allow" % where
        if status == 401:
            assert headers.get("www-authenticate", "").lower().startswith("bearer"), \
                "%s: 401 without WWW-Authenticate: Bearer" % where
        return value

    def check_event(self, name, data):
        events = self.doc.get("x-events", {})
        assert name in events, "event %r is not in x-events of api/openapi.yaml" % name
        self.validate(events[name], data, "event " + name)
        return data


_SPEC = None


def spec():
    global _SPEC
    if _SPEC is None:
        _SPEC = Spec()
    return _SPEC


class Client:
    """A small HTTP client whose every answer is checked against the spec."""

    def __init__(self, base, token=None, timeout=5.0):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.token = token
        self.timeout = timeout
        self.spec = spec()

    def raw(self, method, path, body=None, headers=None):
        """(status, headers, bytes) without any check."""
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        finally:
            c.close()

    def call(self, method, path, body=None, headers=None):
        st, hd, data = self.raw(method, path, body, headers)
        return st, self.spec.check(method, path, st, hd, data)

    def get(self, path, status=200):
        st, value = self.call("GET", path)
        assert st == status, "GET %s: status %d, wanted %d: %r" % (path, st, status, value)
        return value

    def post(self, path, body=None, status=200):
        st, value = self.call("POST", path, body)
        assert st == status, "POST %s: status %d, wanted %d: %r" % (path, st, status, value)
        return value

    def expect_error(self, method, path, status, code, body=None, headers=None):
        st, value = self.call(method, path, body, headers)
        assert st == status and value["error"]["code"] == code, \
            "%s %s: wanted %d %s, got %d %r" % (method, path, status, code, st, value)
        return value["error"]["message"]

    def events(self, max_events=None, timeout=5.0, path="/events"):
        """Yield (event, data) from the stream, each validated; stops after max_events
        or when nothing arrives for `timeout` seconds."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        req = "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n" % (
            path, self.host, self.port)
        if self.token:
            req += "Authorization: Bearer %s\r\n" % self.token
        s.sendall((req + "\r\n").encode())
        f = s.makefile("rb")
        try:
            status = f.readline().decode()
            assert " 200 " in status, "GET %s: %s" % (path, status.strip())
            headers = {}
            while True:
                line = f.readline().decode().strip()
                if not line:
                    break
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            assert headers.get("content-type", "").startswith("text/event-stream"), headers
            chunked = headers.get("transfer-encoding") == "chunked"
            n = 0
            for name, data in _sse_parse(_dechunk(f) if chunked else _lines(f)):
                yield name, self.spec.check_event(name, data)
                n += 1
                if max_events is not None and n >= max_events:
                    return
        except socket.timeout:
            return
        finally:
            f.close()
            s.close()


def _lines(f):
    buf = b""
    while True:
        b = f.read1(65536) if hasattr(f, "read1") else f.read(1)
        if not b:
            return
        buf += b
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode("utf-8")


def _dechunk(f):
    buf = b""
    while True:
        size = f.readline()
        if not size:
            return
        n = int(size.split(b";")[0].strip() or b"0", 16)
        if n == 0:
            return
        buf += f.read(n)
        f.readline()
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.decode("utf-8")


def _sse_parse(lines):
    name, data = None, []
    for line in lines:
        if line.endswith("\r"):
            line = line[:-1]
        if line == "":
            if data:
                yield name or "message", json.loads("\n".join(data))
            name, data = None, []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)

