"""A strict checker of the Prometheus text exposition format, version 0.0.4: a stand-in for
`promtool check metrics` that needs nothing but the standard library.

check(text) returns the problems it finds, as "line N: what" strings (an empty list means the page
is valid). It is stricter than promtool 2.42, whose parser accepts a family's samples scattered
over the page, the same series twice and histograms whose buckets do not add up; those are
problems here. It follows the format as documented at
https://prometheus.io/docs/instrumenting/exposition_formats/:

- Lines end with "\\n", the last one too; empty lines are ignored.
- "# HELP name text" (text escapes only backslash and line feed), "# TYPE name type" (counter,
  gauge, histogram, summary or untyped); other comments are ignored. At most one HELP and one TYPE
  per family, and the TYPE before the family's first sample.
- Samples: name{label="value",...} value [timestamp], label values escaping only backslash,
  double quote and line feed, values as floats ("+Inf", "-Inf", "NaN" spelled so), timestamps as
  integer milliseconds.
- A family's lines (HELP, TYPE, samples) are contiguous, and no series (name and label set)
  appears twice.
- A counter's family is named "..._total" (promtool's lint expects the suffix on the name of its
  TYPE line in this format) and its samples carry that name, or "..._created". Counters are not
  negative.
- A histogram "x" has only x_bucket (with "le"), x_sum and x_count samples; in each series the
  "le" values increase, the cumulative counts never decrease, the last bucket is le="+Inf" and
  equals x_count, and x_sum is there.

promtool_check(text) runs the real `promtool check metrics` when it is installed (Debian's
`prometheus` package ships it): (ran, problems).
"""
import math
import re
import shutil
import subprocess

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_TIMESTAMP = re.compile(r"-?[0-9]+\Z")
_BLANKS = " \t"
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_LABEL_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_HELP_ESCAPES = {"\\": "\\", "n": "\n"}


class _Problem(Exception):
    pass


def parse_value(text):
    """The float a sample value stands for, or None when it is not one."""
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    # Python's float() would also take "1_000", "infinity" and " 1 "; the format does not.
    if _FLOAT.match(text):
        return float(text)
    return None


def _unescape(text, escapes, what):
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in escapes:
                raise _Problem(f"invalid escape sequence {text[i:i + 2]!r} in {what}")
            out.append(escapes[text[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _skip_blanks(line, i):
    while i < len(line) and line[i] in _BLANKS:
        i += 1
    return i


def _parse_sample(line):
    """(name, [(label, value)...], value text, timestamp text or None) of a sample line."""
    i = _skip_blanks(line, 0)
    match = _METRIC_NAME.match(line, i)
    if not match:
        raise _Problem(f"invalid metric name at {line[i:i + 20]!r}")
    name = match.group()
    i = match.end()
    labels = []
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            i = _skip_blanks(line, i)
            if i < len(line) and line[i] == "}":
                i += 1
                break
            match = _LABEL_NAME.match(line, i)
            if not match:
                raise _Problem(f"invalid label name at {line[i:i + 20]!r}")
            label = match.group()
            i = _skip_blanks(line, match.end())
            if i >= len(line) or line[i] != "=":
                raise _Problem(f"expected '=' after label name {label!r}")
            i = _skip_blanks(line, i + 1)
            if i >= len(line) or line[i] != '"':
                raise _Problem(f"expected '\"' to start the value of label {label!r}")
            start = i = i + 1
            while i < len(line) and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
            if i >= len(line):
                raise _Problem(f"unterminated value of label {label!r}")
            labels.append((label, _unescape(line[start:i], _LABEL_ESCAPES, f"label {label!r}")))
            i = _skip_blanks(line, i + 1)
            if i < len(line) and line[i] == ",":
                i += 1
            elif i >= len(line) or line[i] != "}":
                raise _Problem(f"expected ',' or '}}' after the value of label {label!r}")
    if i >= len(line) or line[i] not in _BLANKS:
        raise _Problem(f"expected a blank and a value after {line[:i]!r}")
    tokens = line[i:].split()
    if not tokens or len(tokens) > 2:
        raise _Problem(f"expected a value and an optional timestamp, got {line[i:].strip()!r}")
    return name, labels, tokens[0], tokens[1] if len(tokens) == 2 else None


class _Family:
    def __init__(self, name):
        self.name = name
        self.type = None
        self.help_seen = False
        self.has_samples = False
        self.left = False  # another family's lines came after this one's
        self.reported_scattered = False
        self.series = {}  # histogram and summary series: label set without le/quantile -> state


def _sample_family(name, families):
    """The family a sample belongs to, as the 0.0.4 parsers decide: its exact name first, then a
    histogram's or summary's suffixes, then a counter's _created."""
    if name in families:
        return name
    for suffix, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and base in families and families[base].type in kinds:
            return base
    if name.endswith("_created"):
        total = name[:-len("_created")] + "_total"
        if total in families and families[total].type == "counter":
            return total
    return name


def check(text):
    """The problems of a page in the 0.0.4 text format; [] when it is valid."""
    problems = []
    if text and not text.endswith("\n"):
        problems.append("the last line does not end with a line feed")
    families = {}
    series_seen = {}
    current = None

    def enter(family, lineno):
        nonlocal current
        if current is family:
            return
        if family.left and not family.reported_scattered:
            problems.append(f"line {lineno}: the lines of family {family.name!r} are not together")
            family.reported_scattered = True
        if current is not None:
            current.left = True
        current = family

    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        try:
            if "\r" in line:
                raise _Problem("carriage return (lines must end with a bare line feed)")
            stripped = line.strip(_BLANKS)
            if not stripped:
                continue
            if stripped.startswith("#"):
                _check_comment(stripped, lineno, families, enter, problems)
            else:
                _check_sample(line, lineno, families, series_seen, enter, problems)
        except _Problem as problem:
            problems.append(f"line {lineno}: {problem}")

    for family in families.values():
        if family.type == "histogram":
            _check_histogram(family, problems)
        elif family.type == "summary":
            for key, state in family.series.items():
                for part in ("sum", "count"):
                    if state.get(part) is None:
                        problems.append(f"summary {family.name}{_show(key)} has no _{part}")
    return problems


def _check_comment(stripped, lineno, families, enter, problems):
    keyword, rest = re.match(r"([^ \t]*)(.*)\Z", stripped[1:].lstrip(_BLANKS)).groups()
    if keyword not in ("HELP", "TYPE"):
        return  # an ordinary comment
    rest = rest.lstrip(_BLANKS)
    match = _METRIC_NAME.match(rest)
    if not match or (match.end() < len(rest) and rest[match.end()] not in _BLANKS):
        raise _Problem(f"{keyword} line without a valid metric name")
    name = match.group()
    argument = rest[match.end():].lstrip(_BLANKS)
    family = families.setdefault(name, _Family(name))
    enter(family, lineno)
    if keyword == "HELP":
        if family.help_seen:
            problems.append(f"line {lineno}: second HELP line for {name!r}")
        family.help_seen = True
        _unescape(argument, _HELP_ESCAPES, f"the HELP text of {name!r}")
        return
    tokens = argument.split()
    if len(tokens) != 1 or tokens[0] not in _TYPES:
        raise _Problem(f"TYPE line for {name!r} needs exactly one of {', '.join(_TYPES)}, got {argument!r}")
    if family.type is not None:
        raise _Problem(f"second TYPE line for {name!r}")
    if family.has_samples:
        raise _Problem(f"TYPE line for {name!r} after its samples")
    family.type = tokens[0]
    if family.type == "counter" and not name.endswith("_total"):
        raise _Problem(f"counter {name!r} should be named ..._total (promtool's lint expects the "
                       f"suffix on the TYPE line's name in this format)")


def _show(key):
    return "{" + ",".join(f'{name}="{value}"' for name, value in sorted(key)) + "}" if key else ""


def _check_sample(line, lineno, families, series_seen, enter, problems):
    name, labels, value_text, timestamp = _parse_sample(line)
    family_name = _sample_family(name, families)
    family = families.setdefault(family_name, _Family(family_name))
    enter(family, lineno)
    family.has_samples = True

    names = [label for label, _ in labels]
    duplicated = sorted({label for label in names if names.count(label) > 1})
    if duplicated:
        raise _Problem(f"label name {duplicated[0]!r} given twice")
    reserved = [label for label in names if label.startswith("__")]
    if reserved:
        raise _Problem(f"label name {reserved[0]!r} is reserved (it starts with '__')")
    value = parse_value(value_text)
    if value is None:
        raise _Problem(f"value {value_text!r} is not a float")
    if timestamp is not None and not _TIMESTAMP.match(timestamp):
        raise _Problem(f"timestamp {timestamp!r} is not an integer")
    key = (name, frozenset(labels))
    if key in series_seen:
        raise _Problem(f"series {name}{_show(key[1])} already on line {series_seen[key]}")
    series_seen[key] = lineno

    kind = family.type or "untyped"
    label_map = dict(labels)
    if kind != "histogram" and "le" in label_map:
        raise _Problem(f"label 'le' on {name!r}, which is not a histogram")
    if kind == "counter":
        if name != family.name and name != family.name[:-len("_total")] + "_created":
            raise _Problem(f"sample {name!r} of counter {family.name!r} should be named {family.name!r}")
        if name == family.name and not value >= 0:
            raise _Problem(f"counter {name!r} has the value {value_text}, below zero")
    elif kind in ("gauge", "untyped"):
        if name != family.name:
            raise _Problem(f"sample {name!r} in family {family.name!r}")
    elif kind == "histogram":
        _record_histogram_sample(family, name, label_map, value, value_text)
    elif kind == "summary":
        part = name[len(family.name):]
        rest = {k: v for k, v in label_map.items() if k != "quantile"}
        state = family.series.setdefault(frozenset(rest.items()), {})
        if part == "":
            if parse_value(label_map.get("quantile", "")) is None:
                raise _Problem(f"summary sample {name!r} without a numeric 'quantile' label")
        elif "quantile" in label_map:
            raise _Problem(f"label 'quantile' on {name!r}")
        else:
            state[part[1:]] = value


def _record_histogram_sample(family, name, label_map, value, value_text):
    part = name[len(family.name):]
    if part not in ("_bucket", "_sum", "_count"):
        raise _Problem(f"sample {name!r} of histogram {family.name!r} is not _bucket, _sum or _count")
    rest = {k: v for k, v in label_map.items() if k != "le"}
    state = family.series.setdefault(frozenset(rest.items()), {"buckets": [], "sum": None, "count": None})
    if part != "_bucket":
        if "le" in label_map:
            raise _Problem(f"label 'le' on {name!r}")
        if part == "_count" and not value >= 0:
            raise _Problem(f"{name!r} is {value_text}, not a count")
        state[part[1:]] = value
        return
    if "le" not in label_map:
        raise _Problem(f"bucket {name!r} without an 'le' label")
    le = parse_value(label_map["le"])
    if le is None or math.isnan(le):
        raise _Problem(f"le={label_map['le']!r} on {name!r} is not a number")
    if not value >= 0:
        raise _Problem(f"bucket {name!r} is {value_text}, not a count")
    state["buckets"].append((le, value, label_map["le"]))


def _check_histogram(family, problems):
    for key, state in family.series.items():
        where = f"histogram {family.name}{_show(key)}"
        buckets = state["buckets"]
        if not buckets:
            problems.append(f"{where} has no _bucket lines")
        for (le0, count0, _), (le1, count1, text1) in zip(buckets, buckets[1:]):
            if not le1 > le0:
                problems.append(f'{where}: le="{text1}" does not increase')
            if count1 < count0:
                problems.append(f'{where}: le="{text1}" counts {count1:g}, fewer than the bucket before')
        if buckets and buckets[-1][0] != math.inf:
            problems.append(f'{where} has no le="+Inf" bucket last')
        if state["count"] is None:
            problems.append(f"{where} has no _count")
        elif buckets and buckets[-1][0] == math.inf and buckets[-1][1] != state["count"]:
            problems.append(f'{where}: le="+Inf" counts {buckets[-1][1]:g}, _count {state["count"]:g}')
        if state["sum"] is None:
            problems.append(f"{where} has no _sum")


def promtool_check(text):
    """(True, problems) from `promtool check metrics` on the text, [] when it exits 0 (no parse
    error, no lint complaint); (False, []) when promtool is not installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        return False, []
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                            timeout=60)
    if result.returncode == 0:
        return True, []
    output = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    return True, [f"promtool check metrics exited with {result.returncode}"] + output
