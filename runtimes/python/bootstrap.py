"""Nimbus Python runtime: the program that runs inside one Python function instance.

The platform starts ``python3 bootstrap.py`` with file descriptor 3 connected to
a Unix stream socket and speaks the instance protocol described in
``runtimes/PROTOCOL.md`` over it: frames of ``u32 BE length | u8 type |
u32 BE header length | JSON header | body``.  This program waits for INIT,
says HELLO, loads the handler and answers READY (or INIT_ERROR and exits 1), then serves
INVOKE frames one at a time, answering each with RESULT or ERROR.  Whatever the
function prints (``print``, ``sys.stdout``, ``sys.stderr``, ``logging``) is
sent as LOG frames, so logs always arrive before the result they belong to.
The instance exits 0 when fd 3 reaches end-of-file.  Standard library only,
Python >= 3.9.

Lambda behaviours reproduced, following AWS's own runtime interface client
(awslambdaric) where the documentation is silent:

* Handler ``path/to/module.function`` (``/`` or ``.`` separated module path)
  imported with importlib from the task root; init failures reported as
  ``Runtime.ImportModuleError`` ("Unable to import module 'm': ..."),
  ``Runtime.UserCodeSyntaxError`` ("Syntax error in module 'm': ..."),
  ``Runtime.HandlerNotFound`` ("Handler 'f' missing on module 'm'"),
  ``Runtime.MalformedHandlerName``; any other exception raised while the
  module runs is reported with its own type, message and stack trace.
  https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html
* The context object (``aws_request_id``, ``function_name``,
  ``memory_limit_in_mb`` (a string), ``get_remaining_time_in_millis()``...).
  https://docs.aws.amazon.com/lambda/latest/dg/python-context.html
* Error documents ``{"errorMessage", "errorType", "requestId", "stackTrace"}``
  with ``traceback.format_list`` entries, the runtime's own frames removed;
  ``Runtime.MarshalError`` for results that are not JSON serialisable; results
  serialised with Decimal written as its exact text and ``ensure_ascii=False``
  from python3.12 on (AWS_EXECUTION_ENV), as awslambdaric does.
  https://docs.aws.amazon.com/lambda/latest/dg/python-exceptions.html
* Logging: the root logger gets a handler formatting records as
  ``[LEVEL]\\t<UTC time>.<ms>Z\\t<request id>\\t<message>\\n``; the root level
  stays Python's default (WARNING) unless AWS_LAMBDA_LOG_LEVEL is set; an
  unhandled error is also logged as ``[ERROR] Type: message`` followed by the
  traceback in a single log entry.
  https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html

Start-up cost is kept low: ``logging`` is configured only when the function
imports it (an import hook), ``traceback`` is imported on the first error and
``decimal`` is never imported by the runtime.  The platform starts it with
``python3 -S``: the ``site`` module and the ``.pth`` files of the host's
site-packages (which import certifi, setuptools' distutils shim...) cost
~70% of the interpreter's start and ~4 MB of memory; the site-packages
folders are put on ``sys.path`` all the same (see _add_site_packages), so
packages installed there import as usual.
"""

import importlib  # every INIT imports the handler with it: loaded while the process waits in the pool
import json
import os
import sys
import time
from _thread import RLock
from io import BufferedIOBase, TextIOBase
from struct import Struct
from resource import getrusage, RUSAGE_SELF

FD = 3

INIT = 1
READY = 2
INIT_ERROR = 3
INVOKE = 4
RESULT = 5
ERROR = 6
LOG = 7
HELLO = 8

_PREFIX = Struct(">IBI")  # length, type, header length
_EMPTY_HEADER = b"{}"
_MAX_PENDING = 65536  # flush a line still without "\n" once it gets this long

_SELF = sys._getframe().f_code.co_filename  # this file, as frames name it

def _add_site_packages():
    """Under ``-S``: append the site-packages folders ``site`` would add, without running .pth files."""
    if not sys.flags.no_site:
        return
    version = "python%d.%d" % sys.version_info[:2]
    libdirs = ["lib"] if sys.platlibdir == "lib" else [sys.platlibdir, "lib"]
    seen = set(sys.path)
    for prefix in dict.fromkeys((sys.prefix, sys.exec_prefix)):
        for libdir in libdirs:
            path = os.path.join(prefix, libdir, version, "site-packages")
            if path not in seen and os.path.isdir(path):
                sys.path.append(path)
                seen.add(path)


_add_site_packages()

# The first compile() of a process costs ~2 ms (without -S, site's .pth files
# paid it): paid here, while the process waits in the pool, not by the
# handler's import in INIT.
compile("def handler(event, context):\n    return {'ok': [1, 2.5, None]}\n", "<warm-up>", "exec")

_lock = RLock()  # one frame at a time on fd 3, whichever thread writes
_request_id = ""  # current invocation, for log lines (kept after it ends, as awslambdaric does)


# --------------------------------------------------------------------------
# Frames


def _send(ftype, header, body=b""):
    """Write one frame to fd 3 (header and body are bytes-like)."""
    hlen = len(header)
    blen = len(body)
    prefix = _PREFIX.pack(5 + hlen + blen, ftype, hlen)
    total = 9 + hlen + blen
    with _lock:
        n = os.writev(FD, (prefix, header, body))
        if n != total:  # partial write: send the rest
            rest = memoryview(b"".join((prefix, header, body)))[n:]
            while rest:
                rest = rest[os.write(FD, rest):]


def _send_log(text):
    """One LOG frame (never raises: a lost log line must not fail the function)."""
    if not text.endswith("\n"):
        text += "\n"
    try:
        _send(LOG, _EMPTY_HEADER, text.encode("utf-8", "backslashreplace"))
    except OSError:
        pass


class _Reader(object):
    """Buffered frame reader on fd 3: one readv() usually brings a whole frame."""

    _SIZE = 65536

    def __init__(self, fd):
        self.fd = fd
        self.buf = bytearray(self._SIZE)
        self.view = memoryview(self.buf)
        self.start = 0
        self.end = 0

    def _fill(self, need):
        """Buffer at least `need` bytes from self.start; False on end-of-file."""
        avail = self.end - self.start
        if avail >= need:
            return True
        if self.start + need > len(self.buf):  # no room after start: compact or grow
            if need > len(self.buf):
                buf = bytearray(max(need, 2 * len(self.buf)))
                buf[:avail] = self.view[self.start:self.end]
                self.buf = buf
                self.view = memoryview(buf)
            elif avail:
                self.buf[:avail] = self.view[self.start:self.end].tobytes()
            self.start = 0
            self.end = avail
        view = self.view
        fd = self.fd
        readv = os.readv
        while self.end - self.start < need:
            n = readv(fd, (view[self.end:],))
            if not n:
                return False
            self.end += n
        return True

    def read(self):
        """Next frame as (type, header view, body view), or None at end-of-file.

        The views are only valid until the next call.
        """
        if self.start == self.end:
            self.start = self.end = 0
            if len(self.buf) > 16 * self._SIZE:  # a huge frame went by: give the memory back
                self.buf = bytearray(self._SIZE)
                self.view = memoryview(self.buf)
        if not self._fill(9):
            return None
        length, ftype, hlen = _PREFIX.unpack_from(self.buf, self.start)
        if length < 5 or hlen > length - 5:
            raise ValueError("malformed frame (length %d, header length %d)" % (length, hlen))
        total = 4 + length
        if not self._fill(total):
            return None
        start = self.start
        self.start = start + total
        return ftype, self.view[start + 9:start + 9 + hlen], self.view[start + 9 + hlen:start + total]


def _header(view):
    return json.loads(str(view, "utf-8")) if len(view) else {}


# --------------------------------------------------------------------------
# Output: sys.stdout / sys.stderr as LOG frames


class _LogStream(TextIOBase):
    """A text stream whose complete lines become LOG frames.

    Text without a final newline is held until the newline comes, or until the
    runtime flushes it before READY / RESULT / ERROR.  fileno() is the real fd
    (1 or 2), so child processes handed sys.stdout still write to the
    platform's pipes.
    """

    encoding = "utf-8"
    errors = "strict"
    line_buffering = True
    mode = "w"

    def __init__(self, name, fileno):
        TextIOBase.__init__(self)
        self.name = name
        self._fileno = fileno
        self._pending = ""
        self.buffer = _BinaryLogStream(self)

    def write(self, s):
        if s.__class__ is not str and not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        n = len(s)
        if not n:
            return 0
        with _lock:
            nl = s.rfind("\n")
            if nl < 0:
                self._pending += s
                if len(self._pending) >= _MAX_PENDING:
                    text, self._pending = self._pending, ""
                    _send_log(text)
                return n
            if self._pending:
                s = self._pending + s
                nl += len(self._pending)
                self._pending = ""
            if nl + 1 < len(s):
                self._pending = s[nl + 1:]
                s = s[:nl + 1]
            _send_log(s)
        return n

    def _flush_pending(self):
        if self._pending:
            with _lock:
                text, self._pending = self._pending, ""
                if text:
                    _send_log(text)

    def flush(self):
        # A partial line stays pending (print(..., end="") followed by more
        # text must stay one line); the runtime sends it before the result.
        pass

    def close(self):
        self._flush_pending()

    def fileno(self):
        return self._fileno

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def seekable(self):
        return False


class _BinaryLogStream(BufferedIOBase):
    """sys.stdout.buffer: bytes decoded as UTF-8 into the text stream."""

    def __init__(self, text):
        BufferedIOBase.__init__(self)
        import codecs

        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, b):
        data = bytes(b)
        self._text.write(self._decoder.decode(data))
        return len(data)

    def flush(self):
        pass

    def close(self):
        pass

    def fileno(self):
        return self._text.fileno()

    def isatty(self):
        return False

    def writable(self):
        return True


_stdout = None
_stderr = None


def _flush_streams():
    if _stdout is not None:
        _stdout._flush_pending()
        _stderr._flush_pending()


# --------------------------------------------------------------------------
# logging: configured when the function imports it


def _setup_logging(logging):
    """Give the root logger Lambda's handler and format (see awslambdaric)."""
    root = logging.getLogger()
    for h in root.handlers:
        if getattr(h, "_nimbus", False):
            return

    class LambdaLoggerHandler(logging.Handler):
        _nimbus = True

        def emit(self, record):
            try:
                record.aws_request_id = _request_id
                _send_log(self.format(record))
            except Exception:
                self.handleError(record)

    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level:
        level = {"TRACE": "DEBUG"}.get(level.upper(), level.upper())
        if isinstance(logging.getLevelName(level), int):
            root.setLevel(level)
    root.addHandler(handler)


class _LoggingImportHook(object):
    """sys.meta_path entry that configures `logging` right after it is first imported."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "logging":
            return None
        try:
            sys.meta_path.remove(_LoggingImportHook)
        except ValueError:
            pass
        spec = None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is not None:
                spec = find_spec(name, path, target)
                if spec is not None:
                    break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # _load_handler configures logging after the import instead
        exec_module = spec.loader.exec_module

        def exec_then_setup(module):
            exec_module(module)
            try:
                _setup_logging(module)
            except Exception:
                pass  # never break the function's `import logging`

        try:
            spec.loader.exec_module = exec_then_setup
        except (AttributeError, TypeError):
            pass
        return spec


def _install_logging():
    logging = sys.modules.get("logging")
    if logging is not None:
        _setup_logging(logging)
    else:
        sys.meta_path.insert(0, _LoggingImportHook)


# --------------------------------------------------------------------------
# Results: JSON as awslambdaric writes it


_NONCE = "\x00" + os.urandom(9).hex() + ":"  # json escapes "\x00", user text cannot forge it
_decimals = []
_encoder = None
_marker_re = None


def _default(o):
    decimal = sys.modules.get("decimal")  # no decimal module loaded: o cannot be a Decimal
    if decimal is not None and isinstance(o, decimal.Decimal):
        if o.is_nan():
            return float("nan")
        _decimals.append(str(o))
        return _NONCE + str(len(_decimals) - 1)
    raise TypeError("Object of type %s is not JSON serializable" % o.__class__.__name__)


def _make_encoder():
    global _encoder, _marker_re
    import re

    env = os.environ.get("AWS_EXECUTION_ENV", "")
    ensure_ascii = True  # awslambdaric: ensure_ascii=False from python3.12 on
    if env.startswith("AWS_Lambda_python3."):
        try:
            ensure_ascii = int(env[len("AWS_Lambda_python3."):]) < 12
        except ValueError:
            pass
    _encoder = json.JSONEncoder(ensure_ascii=ensure_ascii, default=_default)
    _marker_re = re.compile('"' + re.escape(json.dumps(_NONCE)[1:-1]) + '([0-9]+)"')


def _to_json(obj):
    if _encoder is None:
        _make_encoder()
    try:
        text = _encoder.encode(obj)
        if _decimals:
            texts = _decimals
            text = _marker_re.sub(lambda m: texts[int(m.group(1))], text)
    finally:
        del _decimals[:]
    return text


class _Fault(Exception):
    def __init__(self, error_type, msg, trace=None):
        Exception.__init__(self, msg)
        self.error_type = error_type
        self.msg = msg
        self.trace = trace


def _marshal(response):
    if isinstance(response, bytes):  # awslambdaric passes bytes through untouched
        return response
    try:
        return _to_json(response).encode("utf-8")
    except Exception as e:
        raise _Fault("Runtime.MarshalError", "Unable to marshal response: %s" % (e,))


# --------------------------------------------------------------------------
# Errors


def _make_error(message, error_type, stack_trace, request_id=""):
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def _exception_error(etype, value, tb, request_id=""):
    import traceback

    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):  # drop the runtime's own leading frames
        if frame[0] != _SELF:
            frames = frames[i:]
            break
    return _make_error(str(value), etype.__name__, traceback.format_list(frames), request_id)


def _indent_nbsp(line):
    n = len(line) - len(line.lstrip(" "))
    return "\u00a0" * n + line[n:] if n else line


def _log_error(error):
    """Log an error document as awslambdaric does: one entry, NBSP-indented trace."""
    desc = "[ERROR]"
    if error["errorType"]:
        desc += " " + error["errorType"]
    if error["errorMessage"]:
        if error["errorType"]:
            desc += ":"
        desc += " " + error["errorMessage"]
    lines = [desc, "Traceback (most recent call last):"]
    for element in error["stackTrace"]:
        if element == "":
            lines.append("")
        else:
            lines.extend(_indent_nbsp(line) for line in str(element).splitlines())
    _send_log("\n".join(lines))


def _error_body(error):
    try:
        return _to_json(error).encode("utf-8")
    except Exception:
        return json.dumps(error).encode("utf-8")


# --------------------------------------------------------------------------
# Context


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client(object):
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]

    def __repr__(self):
        return "Client([%s])" % ",".join("%s=%s" % (k, getattr(self, k)) for k in self.__slots__)


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]

    def __repr__(self):
        return "ClientContext([custom=%s,env=%s,client=%s])" % (self.custom, self.env, self.client)


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field))
    return obj


def _json_value(value, name):
    if isinstance(value, (str, bytes)):
        if not value:
            return None
        try:
            return json.loads(value)
        except Exception as e:
            raise _Fault("Runtime.LambdaContextUnmarshalError", "Unable to parse %s JSON: %s" % (name, e))
    return value


class _Function(object):
    """Per-instance values of the context, from INIT (environment as fallback)."""

    function_name = None
    function_version = None
    memory_limit_in_mb = None
    invoked_function_arn = None
    log_group_name = None
    log_stream_name = None


class LambdaContext(object):
    """The handler's second argument, as awslambdaric's LambdaContext."""

    def __init__(self, invoke_id, client_context, cognito_identity, epoch_deadline_time_in_ms,
                 invoked_function_arn=None, tenant_id=None):
        self.aws_request_id = invoke_id
        self.log_group_name = _Function.log_group_name
        self.log_stream_name = _Function.log_stream_name
        self.function_name = _Function.function_name
        self.memory_limit_in_mb = _Function.memory_limit_in_mb
        self.function_version = _Function.function_version
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        self.identity = _obj_from_dict(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = epoch_deadline_time_in_ms

    def get_remaining_time_in_millis(self):
        delta = int(self._epoch_deadline_time_in_ms - int(time.time() * 1000))
        return delta if delta > 0 else 0

    def log(self, msg):
        _send_log(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
            "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=%s,"
            "identity=%s,tenant_id=%s])"
            % (self.aws_request_id, self.log_group_name, self.log_stream_name, self.function_name,
               self.memory_limit_in_mb, self.function_version, self.invoked_function_arn,
               self.client_context, self.identity, self.tenant_id)
        )


# --------------------------------------------------------------------------
# Init


def _load_handler(handler):
    """Import the handler's module and return the function (awslambdaric's _get_handler)."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise _Fault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise _Fault("Runtime.BuiltInModuleConflict",
                         "Cannot use built-in module %s as a handler module" % modname)
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise _Fault("Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise _Fault("Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace)
    finally:
        if "logging" in sys.modules and _LoggingImportHook not in sys.meta_path:
            _setup_logging(sys.modules["logging"])  # no-op when the hook already did it
    try:
        return getattr(module, fname)
    except AttributeError:
        raise _Fault("Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname))


def _str_or_none(value):
    return None if value is None else str(value)


def _init(init):
    """Apply INIT; return the handler function, or report INIT_ERROR and exit 1."""
    global _stdout, _stderr
    env = init.get("env") or {}
    os.environ.clear()
    for key, value in env.items():
        if value is not None:
            os.environ[str(key)] = value if isinstance(value, str) else str(value)
    if hasattr(time, "tzset"):
        time.tzset()  # TZ may have changed

    _stdout = _LogStream("<stdout>", 1)
    _stderr = _LogStream("<stderr>", 2)
    sys.stdout = _stdout
    sys.stderr = _stderr

    environ = os.environ
    _Function.function_name = init.get("functionName", environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    _Function.function_version = init.get("functionVersion", environ.get("AWS_LAMBDA_FUNCTION_VERSION"))
    _Function.memory_limit_in_mb = _str_or_none(
        init.get("memorySize", environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")))
    _Function.invoked_function_arn = init.get("invokedFunctionArn")
    _Function.log_group_name = init.get("logGroupName", environ.get("AWS_LAMBDA_LOG_GROUP_NAME"))
    _Function.log_stream_name = init.get("logStreamName", environ.get("AWS_LAMBDA_LOG_STREAM_NAME"))

    _install_logging()
    _make_encoder()  # AWS_EXECUTION_ENV decides ensure_ascii

    task_root = init.get("taskRoot") or environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    handler_name = init.get("handler") or environ.get("_HANDLER") or ""
    while handler_name.startswith("./"):
        handler_name = handler_name[2:]
    error = None
    started = time.perf_counter()
    try:
        os.chdir(task_root)
        # As on Lambda (/var/task is read-only): no __pycache__ in the user's folder.
        sys.dont_write_bytecode = True
        here = os.path.dirname(_SELF)
        if sys.path and sys.path[0] == here:  # the runtime's folder is not the function's
            del sys.path[0]
        sys.path.insert(0, task_root)
        handler = _load_handler(handler_name)
    except _Fault as f:
        error = _make_error(f.msg, f.error_type, f.trace)
    except Exception:
        error = _exception_error(*sys.exc_info())
    duration_ms = (time.perf_counter() - started) * 1000.0

    if error is not None:
        _log_error(error)
        _flush_streams()
        try:
            _send(INIT_ERROR, _EMPTY_HEADER, _error_body(error))
        except OSError:
            pass
        os._exit(1)

    _flush_streams()
    _send(READY, json.dumps({"initDurationMs": duration_ms}).encode(), b"")
    return handler


# --------------------------------------------------------------------------
# Main loop


_RSS_REFRESH_S = 0.1  # getrusage at most this often; see _serve


def _serve(reader, handler):
    global _request_id
    monotonic = time.monotonic
    rss_text = ""
    rss_at = -1e9
    loads = json.loads
    quote = json.encoder.encode_basestring_ascii
    read = reader.read
    _fallback_arn = _Function.invoked_function_arn

    while True:
        frame = read()
        if frame is None:
            return
        ftype, hview, bview = frame
        if ftype != INVOKE:
            continue
        header = _header(hview)
        request_id = header.get("requestId") or ""
        if not isinstance(request_id, str):
            request_id = str(request_id)
        _request_id = request_id
        reply_id = '{"requestId":' + quote(request_id) + ',"maxRssKB":'

        error = None
        try:
            body = str(bview, "utf-8") if len(bview) else ""
            context = LambdaContext(
                request_id,
                _json_value(header.get("clientContext"), "Client Context"),
                _json_value(header.get("identity"), "Cognito Identity"),
                header.get("deadlineMs") or 0,
                header.get("invokedFunctionArn") or _fallback_arn,
                header.get("tenantId"),
            )
            try:
                event = loads(body) if body else {}
            except Exception as e:
                raise _Fault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % (e,))
            result = _marshal(handler(event, context))
        except _Fault as f:
            error = _make_error(f.msg, f.error_type, f.trace, request_id)
        except Exception:
            error = _exception_error(*sys.exc_info(), request_id=request_id)

        _flush_streams()
        # Peak resident memory (KB on Linux), reported as Max Memory Used. A
        # system call each time cost ~10% of a warm invocation: a busy
        # instance reports a peak at most _RSS_REFRESH_S old.
        now = monotonic()
        if now - rss_at >= _RSS_REFRESH_S:
            rss_text = str(getrusage(RUSAGE_SELF).ru_maxrss)
            rss_at = now
        reply_header = (reply_id + rss_text + "}").encode()
        if error is None:
            _send(RESULT, reply_header, result)
        else:
            _log_error(error)
            _send(ERROR, reply_header, _error_body(error))
        result = event = context = None


def _exit(code):
    """Exit now: run atexit handlers and send pending output, but do not wait
    for threads the function left running (they would keep the instance alive)."""
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    _flush_streams()
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _main():
    try:
        os.set_blocking(FD, True)
        os.set_inheritable(FD, False)  # the function's child processes must not hold the channel
    except OSError:
        pass
    reader = _Reader(FD)
    try:
        _send(HELLO, _EMPTY_HEADER)  # booted: a warm pool may hand this process out first
        while True:
            frame = reader.read()
            if frame is None:
                _exit(0)
            if frame[0] == INIT:
                init = _header(frame[1])
                break
        handler = _init(init)
        _serve(reader, handler)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the platform went away: same as end-of-file
    except SystemExit as e:
        # sys.exit() in the function ends the instance; its last output still goes out.
        _exit(e.code if isinstance(e.code, int) else (0 if e.code is None else 1))
    _exit(0)


if __name__ == "__main__":
    _main()
