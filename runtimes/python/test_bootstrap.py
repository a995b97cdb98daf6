"""Tests for the Nimbus Python runtime (bootstrap.py).

Each test starts bootstrap.py as a real child process with one end of a
socketpair as its fd 3, speaks the instance protocol (runtimes/PROTOCOL.md)
to it and checks the frames that come back.

    cd runtimes/python && python3 -m unittest test_bootstrap -v

NIMBUS_TEST_PYTHON=/path/to/python3 runs the instances with another
interpreter than the one running the tests.
"""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BOOTSTRAP = os.path.join(HERE, "bootstrap.py")
PYTHON = os.environ.get("NIMBUS_TEST_PYTHON") or sys.executable

INIT, READY, INIT_ERROR, INVOKE, RESULT, ERROR, LOG, HELLO = 1, 2, 3, 4, 5, 6, 7, 8
NAMES = {1: "INIT", 2: "READY", 3: "INIT_ERROR", 4: "INVOKE", 5: "RESULT", 6: "ERROR", 7: "LOG", 8: "HELLO"}
ARN = "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
NBSP = "\u00a0"


class Instance(object):
    """One bootstrap.py process, fd 3 connected to self.sock."""

    def __init__(self, files, handler="app.handler", env=None, spawn_env=None, timeout=20.0, interpreter_args=()):
        self.dir = tempfile.mkdtemp(prefix="nimbus-py-test-")
        for name, text in files.items():
            path = os.path.join(self.dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(textwrap.dedent(text).lstrip("\n"))
        self.handler = handler
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_FUNCTION_NAME": "my-fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "LAMBDA_TASK_ROOT": self.dir,
            "_HANDLER": handler,
            "MY_SETTING": "from-init",
        }
        if env:
            self.env.update(env)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child_fd = child.fileno()

        def make_fd3():
            if child_fd != 3:
                os.dup2(child_fd, 3)
            os.set_inheritable(3, True)

        # The platform spawns the instance with the INIT env; here the parent's
        # environment plus a marker, to check that the runtime drops it.
        spawn_env = dict(os.environ, NIMBUS_PARENT_ONLY="1", **(spawn_env or {}))
        self.proc = subprocess.Popen(
            [PYTHON] + list(interpreter_args) + [BOOTSTRAP],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=spawn_env,
            close_fds=False,  # close_fds would close the fd 3 made by make_fd3
            preexec_fn=make_fd3,
        )
        child.close()
        self.sock = parent
        self.sock.settimeout(timeout)

    # -- frames

    def send(self, ftype, header, body=b""):
        h = json.dumps(header).encode()
        self.sock.sendall(struct.pack(">IBI", 5 + len(h) + len(body), ftype, len(h)) + h + body)

    def _exact(self, n):
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def recv(self, hello=False):
        """(type, header, body) or None at end-of-file; the HELLO frame is skipped unless `hello`."""
        frame = self._recv()
        if frame is not None and frame[0] == HELLO and not hello:
            frame = self._recv()
        return frame

    def _recv(self):
        head = self._exact(4)
        if head is None:
            return None
        (length,) = struct.unpack(">I", head)
        rest = self._exact(length)
        if rest is None:
            raise AssertionError("frame cut short")
        ftype, hlen = struct.unpack(">BI", rest[:5])
        return ftype, json.loads(rest[5:5 + hlen].decode()), rest[5 + hlen:]

    def until_reply(self):
        """Frames up to the first non-LOG one: (frame, [log texts])."""
        logs = []
        while True:
            frame = self.recv()
            if frame is None:
                raise AssertionError("EOF; stderr: %s" % self.stderr_text())
            if frame[0] != LOG:
                return frame, logs
            self._check_log_header(frame)
            logs.append(frame[2].decode("utf-8"))

    @staticmethod
    def _check_log_header(frame):
        if frame[1] != {}:
            raise AssertionError("LOG header %r" % (frame[1],))

    # -- protocol steps

    def init(self, **overrides):
        header = {
            "handler": self.handler,
            "taskRoot": self.dir,
            "env": self.env,
            "functionName": "my-fn",
            "functionVersion": "$LATEST",
            "memorySize": 256,
            "invokedFunctionArn": ARN,
            "logGroupName": "/aws/lambda/my-fn",
            "logStreamName": "2026/01/02/[$LATEST]0123456789abcdef",
        }
        header.update(overrides)
        self.send(INIT, header)
        return self.until_reply()

    def invoke(self, event, request_id="req-1", deadline_ms=None, raw=None, **extra):
        if deadline_ms is None:
            deadline_ms = int(time.time() * 1000) + 30000
        header = dict({"requestId": request_id, "deadlineMs": deadline_ms, "invokedFunctionArn": ARN}, **extra)
        self.send(INVOKE, header, raw if raw is not None else json.dumps(event).encode())
        return self.until_reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        finally:
            self.proc.stdout.close()
            self.proc.stderr.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def stderr_text(self):
        try:
            self.sock.close()
            self.proc.wait(timeout=5)
            return self.proc.stderr.read().decode(errors="replace")
        except Exception as e:  # pragma: no cover - diagnostics only
            return "<%s>" % e


class RuntimeTest(unittest.TestCase):
    def start(self, files, handler="app.handler", env=None, spawn_env=None):
        inst = Instance(files, handler=handler, env=env, spawn_env=spawn_env)
        self.addCleanup(inst.close)
        self.last_dir = inst.dir
        return inst

    def ready(self, files, handler="app.handler", env=None, spawn_env=None):
        inst = self.start(files, handler, env, spawn_env)
        (ftype, header, body), logs = inst.init()
        self.assertEqual(NAMES[ftype], "READY", body)
        return inst, header, logs

    def init_error(self, files, handler="app.handler"):
        inst = self.start(files, handler)
        (ftype, header, body), logs = inst.init()
        self.assertEqual(NAMES[ftype], "INIT_ERROR", body)
        self.assertEqual(header, {})
        self.assertIsNone(inst.recv(), "the instance exits after INIT_ERROR")
        self.assertEqual(inst.proc.wait(timeout=10), 1)
        return json.loads(body), logs

    def result(self, inst, event=None, request_id="req-1", **kw):
        (ftype, header, body), logs = inst.invoke(event if event is not None else {}, request_id, **kw)
        self.assertEqual(NAMES[ftype], "RESULT", body)
        self.assertEqual(header["requestId"], request_id)
        self.assertGreater(header["maxRssKB"], 1000, "peak memory in KB")
        return body, logs

    def error(self, inst, event=None, request_id="req-1"):
        (ftype, header, body), logs = inst.invoke(event if event is not None else {}, request_id)
        self.assertEqual(NAMES[ftype], "ERROR", body)
        self.assertEqual(header["requestId"], request_id)
        self.assertGreater(header["maxRssKB"], 1000, "peak memory in KB")
        return json.loads(body), logs

    # ------------------------------------------------------------------

    def test_site_packages_import_under_dash_s(self):
        # The platform starts the runtime with -S: no site module, no .pth files, site-packages still on sys.path.
        inst = Instance({"app.py": """
            import sys
            def handler(event, context):
                import pip
                return {"site": "site" in sys.modules, "pip": pip.__file__}
        """}, interpreter_args=["-S"])
        self.addCleanup(inst.close)
        (ftype, _, body), _ = inst.init()
        self.assertEqual(NAMES[ftype], "READY", body)
        (ftype, _, body), _ = inst.invoke({})
        self.assertEqual(NAMES[ftype], "RESULT", body)
        result = json.loads(body)
        self.assertFalse(result["site"])
        self.assertIn("site-packages", result["pip"])

    def test_says_hello_before_init(self):
        inst = self.start({"app.py": "def handler(event, context):\n    return 1\n"})
        ftype, header, body = inst.recv(hello=True)
        self.assertEqual(NAMES[ftype], "HELLO")
        self.assertEqual((header, body), ({}, b""))

    def test_round_trip(self):
        inst, header, logs = self.ready({"app.py": """
            def handler(event, context):
                return {"got": event, "name": context.function_name}
        """})
        self.assertIsInstance(header["initDurationMs"], float)
        self.assertGreaterEqual(header["initDurationMs"], 0.0)
        self.assertEqual(logs, [])
        body, logs = self.result(inst, {"a": [1, 2.5, None, "é"]})
        self.assertEqual(json.loads(body), {"got": {"a": [1, 2.5, None, "é"]}, "name": "my-fn"})
        self.assertEqual(logs, [])

    def test_result_text_is_json_dumps_style(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                return event["want"]
        """})
        self.assertEqual(self.result(inst, {"want": None})[0], b"null")
        self.assertEqual(self.result(inst, {"want": "hi"})[0], b'"hi"')
        self.assertEqual(self.result(inst, {"want": {"a": 1, "b": [True]}})[0], b'{"a": 1, "b": [true]}')
        # ensure_ascii, as awslambdaric below python3.12
        self.assertEqual(self.result(inst, {"want": "é"})[0], b'"\\u00e9"')

    def test_ensure_ascii_false_from_python312(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                return {"s": "é✓"}
        """}, env={"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"})
        self.assertEqual(self.result(inst)[0], '{"s": "é✓"}'.encode("utf-8"))

    def test_bytes_result_passes_through(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                return b"raw\\x00bytes"
        """})
        self.assertEqual(self.result(inst)[0], b"raw\x00bytes")

    def test_warm_state_survives_between_invocations(self):
        inst, _, _ = self.ready({"app.py": """
            import time
            LOADED_AT = time.time()
            count = 0

            def handler(event, context):
                global count
                count += 1
                return {"count": count, "loaded": LOADED_AT}
        """})
        first = json.loads(self.result(inst, request_id="r1")[0])
        second = json.loads(self.result(inst, request_id="r2")[0])
        self.assertEqual(first["count"], 1)
        self.assertEqual(second["count"], 2)
        self.assertEqual(first["loaded"], second["loaded"])

    def test_exception_gives_lambda_error_document_and_log(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                raise RuntimeError("kaboom")
        """})
        doc, logs = self.error(inst, request_id="req-err")
        path = os.path.join(inst.dir, "app.py")
        frame = '  File "%s", line 2, in handler\n    raise RuntimeError("kaboom")\n' % path
        self.assertEqual(doc, {
            "errorMessage": "kaboom",
            "errorType": "RuntimeError",
            "requestId": "req-err",
            "stackTrace": [frame],
        })
        self.assertEqual(logs, [
            "[ERROR] RuntimeError: kaboom\nTraceback (most recent call last):\n"
            + NBSP * 2 + 'File "%s", line 2, in handler\n' % path
            + NBSP * 4 + 'raise RuntimeError("kaboom")\n'
        ])
        # The instance keeps serving after an error.
        self.assertEqual(self.error(inst, request_id="req-2")[0]["requestId"], "req-2")

    def test_exception_stack_trace_lists_every_user_frame(self):
        inst, _, _ = self.ready({"app.py": """
            import helper

            def handler(event, context):
                return helper.fail(event["key"])
        """, "helper.py": """
            def fail(key):
                return {}[key]
        """})
        doc, _ = self.error(inst, {"key": "missing"})
        self.assertEqual(doc["errorType"], "KeyError")
        self.assertEqual(doc["errorMessage"], "'missing'")
        self.assertEqual(doc["stackTrace"], [
            '  File "%s", line 4, in handler\n    return helper.fail(event["key"])\n' % os.path.join(inst.dir, "app.py"),
            '  File "%s", line 2, in fail\n    return {}[key]\n' % os.path.join(inst.dir, "helper.py"),
        ])

    def test_decimal_is_written_as_its_exact_number(self):
        inst, _, _ = self.ready({"app.py": """
            from decimal import Decimal

            def handler(event, context):
                if event.get("nan"):
                    return [Decimal("NaN"), Decimal("-1E+3"), Decimal("0.000")]
                return {"price": Decimal("19.90"), "qty": 3}
        """})
        self.assertEqual(self.result(inst)[0], b'{"price": 19.90, "qty": 3}')
        self.assertEqual(self.result(inst, {"nan": True})[0], b"[NaN, -1E+3, 0.000]")

    def test_decimal_marker_cannot_be_forged_by_strings(self):
        inst, _, _ = self.ready({"app.py": """
            from decimal import Decimal

            def handler(event, context):
                return {"s": event["s"], "d": Decimal("1.10"), "z": "\\x00" + event["s"]}
        """})
        tricky = '\\u0000:0" 0 \x00:0 "'
        body = self.result(inst, {"s": tricky})[0]
        self.assertEqual(json.loads(body)["s"], tricky)
        self.assertEqual(json.loads(body)["z"], "\x00" + tricky)
        self.assertIn(b'"d": 1.10', body)

    def test_unserialisable_result_is_marshal_error(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                return {"items": {1, 2}}
        """})
        doc, logs = self.error(inst, request_id="req-m")
        self.assertEqual(doc, {
            "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
            "errorType": "Runtime.MarshalError",
            "requestId": "req-m",
            "stackTrace": [],
        })
        self.assertEqual(logs, [
            "[ERROR] Runtime.MarshalError: Unable to marshal response: Object of type set is not JSON "
            "serializable\nTraceback (most recent call last):\n"
        ])

    def test_bad_event_json_is_unmarshal_error(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                return event
        """})
        (ftype, header, body), _ = inst.invoke(None, "req-u", raw=b"{not json")
        self.assertEqual(NAMES[ftype], "ERROR")
        doc = json.loads(body)
        self.assertEqual(doc["errorType"], "Runtime.UnmarshalError")
        self.assertTrue(doc["errorMessage"].startswith("Unable to unmarshal input: "), doc)

    def test_print_arrives_as_log_frames_before_the_result(self):
        inst, _, logs = self.ready({"app.py": """
            import sys
            print("loading")

            def handler(event, context):
                print("hello", event["n"])
                print("multi\\nline")
                sys.stderr.write("to stderr\\n")
                sys.stdout.write("partial")
                sys.stdout.flush()
                sys.stdout.write(" line")
                sys.stdout.buffer.write("bytes é\\n".encode())
                print("unterminated", end="")
                return "done"
        """})
        self.assertEqual(logs, ["loading\n"])
        body, logs = self.result(inst, {"n": 42})
        self.assertEqual(body, b'"done"')
        # Line-buffered: a frame per completed line (print writes its text and
        # "\n" separately); a pending partial line goes out before the result.
        self.assertEqual(logs, [
            "hello 42\n", "multi\n", "line\n", "to stderr\n", "partial linebytes é\n", "unterminated\n",
        ])

    def test_logging_uses_lambda_format(self):
        inst, _, logs = self.ready({"app.py": """
            import logging
            logger = logging.getLogger()
            logging.getLogger("quiet").info("not shown: root level is WARNING")

            def handler(event, context):
                logger.warning("careful %s", event["x"])
                logger.info("not shown either")
                named = logging.getLogger("mine")
                named.setLevel(logging.INFO)
                named.info("info from a logger set to INFO")
                return "ok"
        """})
        self.assertEqual(logs, [])
        body, logs = self.result(inst, {"x": 7}, request_id="req-log")
        pattern = r"\[%s\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\treq-log\t%s\n\Z"
        self.assertEqual(len(logs), 2, logs)
        self.assertRegex(logs[0], pattern % ("WARNING", "careful 7"))
        self.assertRegex(logs[1], pattern % ("INFO", "info from a logger set to INFO"))
        stamp = re.search(r"\t(\S+)Z\t", logs[0]).group(1)
        logged = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
        self.assertLess(abs(logged - time.time()), 60, "timestamps are UTC")

    def test_logging_level_from_aws_lambda_log_level(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                import logging  # first imported during an invocation
                logging.getLogger().debug("debug line")
                return "ok"
        """}, env={"AWS_LAMBDA_LOG_LEVEL": "debug"})
        _, logs = self.result(inst, request_id="req-dbg")
        self.assertEqual(len(logs), 1, logs)
        self.assertTrue(logs[0].startswith("[DEBUG]\t"), logs)
        self.assertTrue(logs[0].endswith("\treq-dbg\tdebug line\n"), logs)

    def test_logging_imported_by_a_dependency_during_init(self):
        inst, _, logs = self.ready({"app.py": """
            import dep

            def handler(event, context):
                dep.log.error("boom in dep")
                return "ok"
        """, "dep.py": """
            import logging.handlers
            log = logging.getLogger(__name__)
            log.warning("dep loaded")
        """})
        self.assertEqual(len(logs), 1, logs)
        self.assertRegex(logs[0], r"^\[WARNING\]\t\S+Z\t\tdep loaded\n\Z")
        _, logs = self.result(inst, request_id="r9")
        self.assertRegex(logs[0], r"^\[ERROR\]\t\S+Z\tr9\tboom in dep\n\Z")

    def test_logging_imported_before_the_runtime_starts(self):
        site_dir = tempfile.mkdtemp(prefix="nimbus-py-site-")
        self.addCleanup(shutil.rmtree, site_dir, True)
        with open(os.path.join(site_dir, "sitecustomize.py"), "w") as f:
            f.write("import logging\n")
        inst, _, _ = self.ready({"app.py": """
            import logging

            def handler(event, context):
                logging.warning("hi")
                return len(logging.getLogger().handlers)
        """}, spawn_env={"PYTHONPATH": site_dir})
        body, logs = self.result(inst, request_id="r-site")
        self.assertEqual(body, b"1")
        self.assertEqual(len(logs), 1, logs)
        self.assertRegex(logs[0], r"^\[WARNING\]\t\S+Z\tr-site\thi\n\Z")

    def test_missing_module_is_import_module_error(self):
        doc, logs = self.init_error({"other.py": "x = 1\n"})
        self.assertEqual(doc, {
            "errorMessage": "Unable to import module 'app': No module named 'app'",
            "errorType": "Runtime.ImportModuleError",
            "requestId": "",
            "stackTrace": [],
        })
        self.assertEqual(logs, [
            "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named 'app'\n"
            "Traceback (most recent call last):\n"
        ])

    def test_missing_dependency_is_import_module_error(self):
        doc, _ = self.init_error({"app.py": """
            import not_installed_anywhere

            def handler(event, context):
                return 1
        """})
        self.assertEqual(doc["errorType"], "Runtime.ImportModuleError")
        self.assertEqual(doc["errorMessage"],
                         "Unable to import module 'app': No module named 'not_installed_anywhere'")

    def test_syntax_error_is_user_code_syntax_error(self):
        doc, logs = self.init_error({"app.py": """
            def handler(event, context):
                return 1
            def broken(:
        """})
        self.assertEqual(doc["errorType"], "Runtime.UserCodeSyntaxError")
        self.assertRegex(doc["errorMessage"], r"^Syntax error in module 'app': .+ \(app\.py, line 3\)$")
        self.assertEqual(doc["requestId"], "")
        self.assertEqual(len(doc["stackTrace"]), 1)
        self.assertTrue(doc["stackTrace"][0].startswith(
            '  File "%s" Line 3\n' % os.path.join(self.last_dir, "app.py")), doc)
        self.assertIn("def broken(:", doc["stackTrace"][0])
        self.assertTrue(logs[0].startswith("[ERROR] Runtime.UserCodeSyntaxError: Syntax error in module 'app'"))

    def test_missing_handler_function_is_handler_not_found(self):
        doc, _ = self.init_error({"app.py": "def other(event, context):\n    return 1\n"})
        self.assertEqual(doc, {
            "errorMessage": "Handler 'handler' missing on module 'app'",
            "errorType": "Runtime.HandlerNotFound",
            "requestId": "",
            "stackTrace": [],
        })

    def test_malformed_handler_name(self):
        doc, _ = self.init_error({"app.py": "x = 1\n"}, handler="app")
        self.assertEqual(doc["errorType"], "Runtime.MalformedHandlerName")
        self.assertTrue(doc["errorMessage"].startswith("Bad handler 'app': "), doc)

    def test_exception_at_import_time_keeps_its_type(self):
        # As awslambdaric: only ImportError / SyntaxError are wrapped; anything
        # else raised by the module is reported with its own type and trace.
        doc, logs = self.init_error({"app.py": """
            import os
            TABLE = os.environ["TABLE_NAME"]

            def handler(event, context):
                return TABLE
        """})
        self.assertEqual(doc["errorType"], "KeyError")
        self.assertEqual(doc["errorMessage"], "'TABLE_NAME'")
        self.assertEqual(doc["requestId"], "")
        self.assertIn('  File "%s", line 2, in <module>\n    TABLE = os.environ["TABLE_NAME"]\n'
                      % os.path.join(self.last_dir, "app.py"), doc["stackTrace"])
        self.assertFalse(any(BOOTSTRAP in line for line in doc["stackTrace"]), doc["stackTrace"])
        self.assertTrue(logs[0].startswith("[ERROR] KeyError: 'TABLE_NAME'\nTraceback (most recent call last):\n"))

    def test_handler_paths_with_slashes_and_dots(self):
        files = {"src/handlers/app.py": """
            def handler(event, context):
                return __name__
        """}
        inst, _, _ = self.ready(files, handler="src/handlers/app.handler")
        self.assertEqual(self.result(inst)[0], b'"src.handlers.app"')
        inst, _, _ = self.ready(files, handler="src.handlers.app.handler")
        self.assertEqual(self.result(inst)[0], b'"src.handlers.app"')

    def test_context_object(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                cc = context.client_context
                return {
                    "aws_request_id": context.aws_request_id,
                    "function_name": context.function_name,
                    "function_version": context.function_version,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "invoked_function_arn": context.invoked_function_arn,
                    "log_group_name": context.log_group_name,
                    "log_stream_name": context.log_stream_name,
                    "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
                    "client_context": cc and [cc.custom, cc.env, cc.client.app_title],
                    "remaining": context.get_remaining_time_in_millis(),
                    "remaining_type": type(context.get_remaining_time_in_millis()).__name__,
                }
        """})
        deadline = int(time.time() * 1000) + 5000
        body, _ = self.result(inst, request_id="req-ctx", deadline_ms=deadline)
        got = json.loads(body)
        remaining = got.pop("remaining")
        self.assertLessEqual(remaining, 5000)
        self.assertGreater(remaining, 3000)
        self.assertEqual(got, {
            "aws_request_id": "req-ctx",
            "function_name": "my-fn",
            "function_version": "$LATEST",
            "memory_limit_in_mb": "256",
            "invoked_function_arn": ARN,
            "log_group_name": "/aws/lambda/my-fn",
            "log_stream_name": "2026/01/02/[$LATEST]0123456789abcdef",
            "identity": [None, None],
            "client_context": None,
            "remaining_type": "int",
        })
        body, _ = self.result(
            inst, request_id="req-ctx2",
            deadline_ms=int(time.time() * 1000) - 1000,
            clientContext={"custom": {"k": "v"}, "env": {"platform": "x"}, "client": {"app_title": "App"}},
            identity={"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"},
        )
        got = json.loads(body)
        self.assertEqual(got["remaining"], 0)
        self.assertEqual(got["identity"], ["id-1", "pool-1"])
        self.assertEqual(got["client_context"], [{"k": "v"}, {"platform": "x"}, "App"])

    def test_environment_is_exactly_the_init_env(self):
        inst, _, _ = self.ready({"app.py": """
            import os
            AT_IMPORT = dict(os.environ)

            def handler(event, context):
                return {"import": AT_IMPORT, "now": dict(os.environ), "cwd": os.getcwd()}
        """})
        self.assertEqual(os.environ.get("NIMBUS_PARENT_ONLY"), None)
        got = json.loads(self.result(inst)[0])
        self.assertEqual(got["import"], inst.env)
        self.assertEqual(got["now"], inst.env)
        self.assertNotIn("NIMBUS_PARENT_ONLY", got["now"])
        self.assertEqual(os.path.realpath(got["cwd"]), os.path.realpath(inst.dir))

    def test_real_stdout_stays_usable_for_child_processes(self):
        inst, _, _ = self.ready({"app.py": """
            import subprocess, sys

            def handler(event, context):
                subprocess.run(["sh", "-c", "echo child-inherited"], check=True)
                subprocess.run(["sh", "-c", "echo child-via-sys-stdout"], stdout=sys.stdout, check=True)
                subprocess.run(["sh", "-c", "echo child-stderr >&2"], check=True)
                return "ok"
        """})
        body, logs = self.result(inst)
        self.assertEqual(body, b'"ok"')
        self.assertEqual(logs, [])
        inst.sock.close()
        self.assertEqual(inst.proc.wait(timeout=10), 0)
        self.assertEqual(inst.proc.stdout.read(), b"child-inherited\nchild-via-sys-stdout\n")
        self.assertEqual(inst.proc.stderr.read(), b"child-stderr\n")

    def test_large_event_and_result(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                return {"size": len(event["blob"]), "echo": event["blob"]}
        """})
        blob = "x" * (3 * 1024 * 1024) + "é"
        for rid in ("big-1", "big-2"):
            body, _ = self.result(inst, {"blob": blob}, request_id=rid)
            got = json.loads(body)
            self.assertEqual(got["size"], len(blob))
            self.assertEqual(got["echo"], blob)
        self.assertEqual(self.result(inst, {"blob": "small"}, request_id="small")[0],
                         b'{"size": 5, "echo": "small"}')

    def test_frames_split_across_writes(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                return event
        """})
        h = json.dumps({"requestId": "slow", "deadlineMs": int(time.time() * 1000) + 10000}).encode()
        body = b'{"slow": true}'
        data = struct.pack(">IBI", 5 + len(h) + len(body), INVOKE, len(h)) + h + body
        for i in range(len(data)):
            inst.sock.sendall(data[i:i + 1])
            if i % 7 == 0:
                time.sleep(0.001)
        (ftype, header, body), _ = inst.until_reply()
        self.assertEqual((NAMES[ftype], header["requestId"], body), ("RESULT", "slow", b'{"slow": true}'))

    def test_eof_on_fd3_exits_zero(self):
        inst, _, _ = self.ready({"app.py": """
            def handler(event, context):
                return 1
        """})
        self.result(inst)
        inst.sock.shutdown(socket.SHUT_WR)
        self.assertIsNone(inst.recv())
        self.assertEqual(inst.proc.wait(timeout=10), 0)
        self.assertEqual(inst.proc.stderr.read(), b"")

    def test_eof_exits_without_waiting_for_threads_but_runs_atexit(self):
        inst, _, _ = self.ready({"app.py": """
            import atexit, threading, time
            threading.Thread(target=time.sleep, args=(60,)).start()  # not a daemon
            atexit.register(print, "atexit ran")

            def handler(event, context):
                return 1
        """})
        started = time.time()
        inst.sock.shutdown(socket.SHUT_WR)
        frame = inst.recv()
        self.assertEqual(frame, (LOG, {}, b"atexit ran\n"))
        self.assertIsNone(inst.recv())
        self.assertEqual(inst.proc.wait(timeout=10), 0)
        self.assertLess(time.time() - started, 10)

    def test_channel_is_not_inherited_by_child_processes(self):
        inst, _, _ = self.ready({"app.py": """
            import subprocess

            def handler(event, context):
                return subprocess.run(["sh", "-c", "[ -e /dev/fd/3 ] && echo open || echo closed"],
                                      close_fds=False, capture_output=True, text=True).stdout
        """})
        self.assertEqual(self.result(inst)[0], b'"closed\\n"')

    def test_eof_before_init_exits_zero(self):
        inst = self.start({"app.py": "def handler(e, c):\n    return 1\n"})
        inst.sock.shutdown(socket.SHUT_WR)
        self.assertEqual(inst.proc.wait(timeout=10), 0)
        self.assertEqual(inst.proc.stderr.read(), b"")

    def test_runtime_directory_is_not_importable(self):
        inst, _, _ = self.ready({"app.py": """
            import importlib.util, sys

            def handler(event, context):
                return [importlib.util.find_spec("test_bootstrap") is None, sys.path[0]]
        """})
        found_none, first = json.loads(self.result(inst)[0])
        self.assertTrue(found_none)
        self.assertEqual(first, inst.dir)


class EncoderTest(unittest.TestCase):
    """bootstrap's JSON encoder, in-process."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, HERE)
        try:
            import bootstrap
        finally:
            sys.path.remove(HERE)
        cls.bootstrap = bootstrap

    def test_decimals(self):
        from decimal import Decimal

        to_json = self.bootstrap._to_json
        self.assertEqual(to_json({"price": Decimal("19.90"), "qty": 3}), '{"price": 19.90, "qty": 3}')
        self.assertEqual(to_json([Decimal(i) for i in range(12)]), "[%s]" % ", ".join(str(i) for i in range(12)))
        self.assertEqual(to_json(Decimal("sNaN")), "NaN")
        self.assertEqual(to_json("plain"), '"plain"')
        self.assertEqual(self.bootstrap._decimals, [])

    def test_errors_leave_no_state(self):
        from decimal import Decimal

        with self.assertRaises(TypeError):
            self.bootstrap._to_json([Decimal("1.5"), object()])
        self.assertEqual(self.bootstrap._decimals, [])
        self.assertEqual(self.bootstrap._to_json([Decimal("2.50")]), "[2.50]")


if __name__ == "__main__":
    unittest.main()
