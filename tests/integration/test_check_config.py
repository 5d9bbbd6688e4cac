"""`unshelver check-config`: valid configs exit 0, broken ones exit 2 naming file, line and key."""
import os
import subprocess
import tempfile
import unittest

from harness import BINARY, SOURCE_DIR


def check(text=None, path=None, env=None):
    if path is None:
        directory = tempfile.mkdtemp(prefix="unshelver-config-")
        path = os.path.join(directory, "config.yaml")
        with open(path, "w") as config_file:
            config_file.write(text)
    result = subprocess.run([BINARY, "check-config", "--config", path], capture_output=True, text=True,
                            timeout=10, env=env)
    return result.returncode, result.stdout + result.stderr, path


BASE = """\
app:
  title: Test
buttons:
  - id: gpu
    provider: sim
"""


class CheckConfigTest(unittest.TestCase):
    def test_example_config_is_valid(self):
        code, output, _ = check(path=os.path.join(SOURCE_DIR, "config/config.example.yaml"))
        self.assertEqual(code, 0, output)
        self.assertIn("valid", output)

    def test_python_unshelver_config_loads_unchanged(self):
        code, output, _ = check(path=os.path.join(SOURCE_DIR, "tests/unit/core/testdata/python_unshelver_config.yaml"))
        self.assertEqual(code, 0, output)

    def test_minimal_sim_config_is_valid(self):
        code, output, _ = check(BASE)
        self.assertEqual(code, 0, output)

    def test_wrong_type_names_file_line_and_key(self):
        code, output, path = check(BASE + "    port: eighty\n")
        self.assertEqual(code, 2, output)
        self.assertIn(f"{path}:6:", output)
        self.assertIn("buttons[0].port", output)

    def test_unknown_key_names_line_and_suggests(self):
        code, output, path = check(BASE + "idle_timout_minutes: 10\n")
        self.assertEqual(code, 2, output)
        self.assertIn(f"{path}:6:", output)
        self.assertIn("idle_timout_minutes", output)
        self.assertIn("idle_timeout_minutes", output)  # the suggestion

    def test_yaml_syntax_error_names_the_line(self):
        code, output, path = check("app:\n  title: [unclosed\nbuttons: []\n")
        self.assertEqual(code, 2, output)
        self.assertIn(path, output)
        self.assertRegex(output, r":[23]:")

    def test_missing_file_exits_2(self):
        code, output, _ = check(path="/nonexistent/config.yaml")
        self.assertEqual(code, 2, output)
        self.assertIn("/nonexistent/config.yaml", output)

    def test_usage_error_exits_2(self):
        result = subprocess.run([BINARY, "frobnicate"], capture_output=True, text=True, timeout=10)
        self.assertEqual(result.returncode, 2)
        self.assertIn("unknown command", result.stderr)

    def test_secret_values_never_appear_in_errors(self):
        secret = "Sup3r-Secret-Value-That-Must-Not-Leak"
        code, output, _ = check(BASE.replace("  title: Test", f"  title: Test\n  control_token: {secret}\n  bogus: 1"))
        self.assertEqual(code, 2, output)
        self.assertNotIn(secret, output)


if __name__ == "__main__":
    unittest.main()
