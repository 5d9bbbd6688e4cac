"""The Prometheus text-format checker (prom_check.py) itself: it passes valid pages, finds each kind
of broken page (so a test that relies on it can fail), and agrees with the real promtool when
Debian's `prometheus` package is installed."""
import shutil
import unittest

from prom_check import check, parse_value, promtool_check

# The page core/metrics_test.cc expects from MetricsPage, byte for byte.
GOLDEN = """\
# HELP unshelver_wakes_total Wakes requested, by backend.
# TYPE unshelver_wakes_total counter
unshelver_wakes_total{backend="gpu"} 3
unshelver_wakes_total{backend="cpu"} 0
# HELP unshelver_backend_ready 1 while the backend is ready.
# TYPE unshelver_backend_ready gauge
unshelver_backend_ready{backend="gpu"} 1
unshelver_backend_ready{backend="cpu"} 0
# HELP unshelver_wake_duration_seconds Seconds from a wake request to ready.
# TYPE unshelver_wake_duration_seconds histogram
unshelver_wake_duration_seconds_bucket{backend="gpu",le="0.5"} 2
unshelver_wake_duration_seconds_bucket{backend="gpu",le="1"} 2
unshelver_wake_duration_seconds_bucket{backend="gpu",le="5"} 3
unshelver_wake_duration_seconds_bucket{backend="gpu",le="30"} 3
unshelver_wake_duration_seconds_bucket{backend="gpu",le="+Inf"} 4
unshelver_wake_duration_seconds_sum{backend="gpu"} 42.75
unshelver_wake_duration_seconds_count{backend="gpu"} 4
# HELP unshelver_start_time_seconds Start of the process, in Unix seconds.
# TYPE unshelver_start_time_seconds gauge
unshelver_start_time_seconds 1700000000
"""

# What else the format allows: escapes, special values, timestamps, a trailing comma, blanks,
# empty lines, free comments, untyped samples, a summary, a counter's _created, a histogram
# without labels.
VARIED = """\
# A free comment, ignored.
# HELP path_info Reads C:\\\\dir and "quotes"\\nsecond line.
# TYPE path_info gauge
path_info{path="C:\\\\dir \\"x\\"\\nnext",plain="caf\u00e9 {a=b}, ok"} 1
path_info{path="nan"} NaN
path_info{path="up"} +Inf 1700000000000
path_info{path="down",} -Inf -5

# TYPE jobs_total counter
jobs_total 12
jobs_created 1.7e+09
no_type_here{ a = "1" ,b="2"}\t3.5e-07
# HELP rpc_seconds RPC latency.
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.5"} 0.25
rpc_seconds{quantile="0.99"} 1.5
rpc_seconds_sum 40
rpc_seconds_count 80
# HELP empty_seconds Nothing observed.
# TYPE empty_seconds histogram
empty_seconds_bucket{le="+Inf"} 0
empty_seconds_sum 0
empty_seconds_count 0
"""

HEADER = "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
GAUGE = "# HELP g G.\n# TYPE g gauge\n"
COUNTER = "# HELP c_total C.\n# TYPE c_total counter\n"


def histogram(*bucket_lines, sum_line="h_seconds_sum 3\n", count_line="h_seconds_count 2\n"):
    return HEADER + "".join(bucket_lines) + sum_line + count_line


class ValidPagesTest(unittest.TestCase):
    def test_golden_page_of_the_unit_tests(self):
        self.assertEqual(check(GOLDEN), [])

    def test_what_else_the_format_allows(self):
        self.assertEqual(check(VARIED), [])

    def test_empty_page(self):
        self.assertEqual(check(""), [])

    def test_valid_histogram(self):
        page = histogram('h_seconds_bucket{le="1"} 1\n', 'h_seconds_bucket{le="2.5"} 1\n',
                         'h_seconds_bucket{le="+Inf"} 2\n')
        self.assertEqual(check(page), [])

    def test_values(self):
        for text, expected in (("12", 12.0), ("-3.5", -3.5), ("1e+06", 1e6), (".5", 0.5), ("+Inf", float("inf")),
                               ("-Inf", float("-inf"))):
            self.assertEqual(parse_value(text), expected, text)
        self.assertNotEqual(parse_value("NaN"), parse_value("NaN"))  # NaN, but not None
        self.assertIsNotNone(parse_value("NaN"))
        for text in ("1_000", "inf", "nan", "infinity", "0x10", "1,5", "", "one"):
            self.assertIsNone(parse_value(text), text)


class BrokenPagesTest(unittest.TestCase):
    def assertProblem(self, page, fragment):
        problems = check(page)
        self.assertTrue(any(fragment in problem for problem in problems),
                        f"expected a problem with {fragment!r}, got {problems}")

    def test_missing_final_line_feed(self):
        self.assertProblem(GOLDEN.rstrip("\n"), "does not end with a line feed")

    def test_carriage_returns(self):
        self.assertProblem(GAUGE.replace("\n", "\r\n") + "g 1\r\n", "carriage return")

    def test_invalid_metric_name(self):
        self.assertProblem("1abc 1\n", "invalid metric name")
        self.assertProblem("a-b 1\n", "expected a blank and a value")

    def test_invalid_label_name(self):
        self.assertProblem(GAUGE + 'g{1a="v"} 1\n', "invalid label name")
        self.assertProblem(GAUGE + 'g{a:b="v"} 1\n', "expected '='")

    def test_reserved_and_repeated_label_names(self):
        self.assertProblem(GAUGE + 'g{__name__="v"} 1\n', "reserved")
        self.assertProblem(GAUGE + 'g{a="1",a="2"} 1\n', "given twice")

    def test_invalid_escapes(self):
        self.assertProblem(GAUGE + 'g{a="\\q"} 1\n', "invalid escape sequence")
        self.assertProblem(GAUGE + 'g{a="trailing\\"} 1\n', "unterminated")
        self.assertProblem('# HELP g Say \\"hi\\".\n# TYPE g gauge\ng 1\n', "invalid escape sequence")

    def test_malformed_label_sets(self):
        self.assertProblem(GAUGE + 'g{a="1" b="2"} 1\n', "expected ','")
        self.assertProblem(GAUGE + 'g{a=1} 1\n', "expected '\"'")
        self.assertProblem(GAUGE + 'g{a="1"}1\n', "expected a blank and a value")

    def test_values_and_timestamps(self):
        self.assertProblem(GAUGE + "g abc\n", "not a float")
        self.assertProblem(GAUGE + "g inf\n", "not a float")
        self.assertProblem(GAUGE + "g 1_000\n", "not a float")
        self.assertProblem(GAUGE + "g\n", "expected a blank and a value")
        self.assertProblem(GAUGE + "g 1 1.5\n", "not an integer")
        self.assertProblem(GAUGE + "g 1 2 3\n", "optional timestamp")

    def test_help_and_type_lines(self):
        self.assertProblem(GAUGE + "# HELP g Again.\ng 1\n", "second HELP")
        self.assertProblem(GAUGE + "# TYPE g gauge\ng 1\n", "second TYPE")
        self.assertProblem("# HELP g G.\ng 1\n# TYPE g gauge\n", "after its samples")
        self.assertProblem("# TYPE g gauges\ng 1\n", "needs exactly one of")
        self.assertProblem("# TYPE g gauge extra\ng 1\n", "needs exactly one of")
        self.assertProblem("# HELP\n", "without a valid metric name")

    def test_scattered_family(self):
        page = GAUGE + 'g{n="1"} 1\n' + COUNTER + "c_total 1\n" + 'g{n="2"} 2\n'
        self.assertProblem(page, "are not together")

    def test_duplicate_series(self):
        self.assertProblem(GAUGE + 'g{a="1"} 1\ng{a="1"} 2\n', "already on line 3")
        self.assertProblem(GAUGE + 'g{a="1",b="2"} 1\ng{b="2",a="1"} 2\n', "already on line 3")

    def test_counters(self):
        self.assertProblem("# HELP c C.\n# TYPE c counter\nc_total 1\n", "should be named ..._total")
        self.assertProblem(COUNTER + "c_total -1\n", "below zero")
        self.assertProblem(COUNTER + 'c_total{le="1"} 1\n', "not a histogram")

    def test_histogram_without_inf_bucket(self):
        self.assertProblem(histogram('h_seconds_bucket{le="1"} 2\n'), 'no le="+Inf" bucket')

    def test_histogram_le_not_increasing(self):
        page = histogram('h_seconds_bucket{le="2"} 1\n', 'h_seconds_bucket{le="1"} 1\n',
                         'h_seconds_bucket{le="+Inf"} 2\n')
        self.assertProblem(page, "does not increase")

    def test_histogram_counts_not_cumulative(self):
        page = histogram('h_seconds_bucket{le="1"} 2\n', 'h_seconds_bucket{le="+Inf"} 1\n', count_line="h_seconds_count 1\n")
        self.assertProblem(page, "fewer than the bucket before")

    def test_histogram_inf_differs_from_count(self):
        page = histogram('h_seconds_bucket{le="1"} 1\n', 'h_seconds_bucket{le="+Inf"} 2\n', count_line="h_seconds_count 3\n")
        self.assertProblem(page, "_count 3")

    def test_histogram_missing_sum_count_or_buckets(self):
        buckets = ('h_seconds_bucket{le="1"} 1\n', 'h_seconds_bucket{le="+Inf"} 2\n')
        self.assertProblem(histogram(*buckets, sum_line=""), "has no _sum")
        self.assertProblem(histogram(*buckets, count_line=""), "has no _count")
        self.assertProblem(histogram(), "has no _bucket lines")

    def test_histogram_bad_samples(self):
        self.assertProblem(histogram("h_seconds_bucket 2\n"), "without an 'le' label")
        self.assertProblem(histogram('h_seconds_bucket{le="x"} 2\n'), "is not a number")
        self.assertProblem(histogram('h_seconds_bucket{le="+Inf"} 2\n', "h_seconds 2\n"),
                           "is not _bucket, _sum or _count")
        self.assertProblem(histogram('h_seconds_bucket{le="+Inf"} 2\n', sum_line='h_seconds_sum{le="1"} 3\n'),
                           "label 'le' on")


@unittest.skipUnless(shutil.which("promtool"), "promtool is not installed (Debian package prometheus)")
class PromtoolAgreesTest(unittest.TestCase):
    def test_valid_page(self):
        self.assertEqual(check(GOLDEN), [])
        self.assertEqual(promtool_check(GOLDEN), (True, []))

    def test_invalid_pages(self):
        broken = {
            "no final line feed": GOLDEN.rstrip("\n"),
            "invalid escape": GAUGE + 'g{a="\\q"} 1\n',
            "TYPE after samples": "# HELP g G.\ng 1\n# TYPE g gauge\n",
            "counter named without _total": "# HELP c C.\n# TYPE c counter\nc_total 1\n",
            "repeated label name": GAUGE + 'g{a="1",a="2"} 1\n',
        }
        for what, page in broken.items():
            with self.subTest(what):
                self.assertNotEqual(check(page), [])
                ran, problems = promtool_check(page)
                self.assertTrue(ran)
                self.assertNotEqual(problems, [])
                self.assertIn("promtool check metrics exited with", problems[0])


if __name__ == "__main__":
    unittest.main()
