"""POST /process: statistics of a list of numbers.

Request body: {"numbers": [1, 2, 3.5, ...]}
Response 200: {"count", "sum", "mean", "median", "min", "max", "stdev"}
(stdev is the population standard deviation), floats rounded to 6 places.
Response 400: {"error": "..."} saying what is wrong with the input.

Standard library only, as on Lambda without layers.
"""
import base64
import binascii
import json
import math
import statistics

DECIMALS = 6
MAX_NUMBERS = 100_000


class BadRequest(Exception):
    """The client's input is unusable; the message goes back in the 400 body."""


def _response(status, payload):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }


def _round(value):
    """Rounds floats to DECIMALS places; ints are exact and stay as they are."""
    return round(value, DECIMALS) if isinstance(value, float) else value


def _parse_numbers(event):
    body = event.get("body") if isinstance(event, dict) else None
    if body is None or body == "":
        raise BadRequest('request body is missing; send JSON like {"numbers": [1, 2, 3]}')
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest("request body is not valid base64-encoded UTF-8")
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as e:
        raise BadRequest(f"request body is not valid JSON: {e}")
    if not isinstance(data, dict):
        raise BadRequest('request body must be a JSON object like {"numbers": [1, 2, 3]}')
    if "numbers" not in data:
        raise BadRequest('"numbers" is missing')
    numbers = data["numbers"]
    if not isinstance(numbers, list):
        raise BadRequest('"numbers" must be a list of numbers')
    if not numbers:
        raise BadRequest('"numbers" is empty; give at least one number')
    if len(numbers) > MAX_NUMBERS:
        raise BadRequest(f'"numbers" has {len(numbers)} items; at most {MAX_NUMBERS} are allowed')
    for i, n in enumerate(numbers):
        # bool is a subclass of int in Python, but true/false are not numbers.
        if isinstance(n, bool) or not isinstance(n, (int, float)):
            raise BadRequest(f'"numbers"[{i}] is not a number: {json.dumps(n)}')
        if isinstance(n, float) and not math.isfinite(n):
            raise BadRequest(f'"numbers"[{i}] is not a finite number')
    return numbers


def _stats(numbers):
    """The statistics of a non-empty list of finite numbers.

    Raises BadRequest when a result does not fit in a float (e.g. 1e308 twice).
    """
    try:
        result = {
            "count": len(numbers),
            # Exact for ints; fsum avoids the rounding drift of a running float sum.
            "sum": _round(math.fsum(numbers) if any(isinstance(n, float) for n in numbers) else sum(numbers)),
            "mean": _round(statistics.fmean(numbers)),
            "median": _round(statistics.median(numbers)),
            "min": min(numbers),
            "max": max(numbers),
            "stdev": _round(statistics.pstdev(numbers)),
        }
    except OverflowError:
        raise BadRequest("the numbers are too large to compute their statistics")
    for key in ("sum", "mean", "median", "stdev"):
        if isinstance(result[key], float) and not math.isfinite(result[key]):
            raise BadRequest("the numbers are too large to compute their statistics")
    return result


def lambda_handler(event, context):
    request_id = getattr(context, "aws_request_id", "-")
    try:
        numbers = _parse_numbers(event)
        result = _stats(numbers)
    except BadRequest as e:
        print(f"process request={request_id} status=400 error={e}")
        return _response(400, {"error": str(e)})
    print(f"process request={request_id} status=200 count={result['count']} mean={result['mean']}")
    return _response(200, result)
