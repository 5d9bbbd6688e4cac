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


def clean_environment():
    """This process's environment without the secrets that harness.py puts there for the daemons."""
    return {key: value for key, value in os.environ.items()
            if key not in ("UNSHELVER_CONTROL_TOKEN", "UNSHELVER_SECRET_KEY")}


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

    def test_production_refuses_the_example_secrets_naming_each(self):
        # config.example.yaml says `env: production`; with the example secrets file beside it and
        # no secrets in the environment, every weak secret is named, and no value is shown.
        directory = tempfile.mkdtemp(prefix="unshelver-config-")
        secrets_path = os.path.join(SOURCE_DIR, "config/secrets.example.ini")
        with open(os.path.join(SOURCE_DIR, "config/config.example.yaml")) as example:
            text = example.read() + f"\nsecrets_file: {secrets_path}\n"
        path = os.path.join(directory, "config.yaml")
        with open(path, "w") as config_file:
            config_file.write(text)
        code, output, _ = check(path=path, env=clean_environment())
        self.assertEqual(code, 2, output)
        for key in ("app.control_token: is the example value", "app.secret_key: is the example value",
                    "openstack.password: is the example value"):
            self.assertIn(key, output)
        self.assertIn(secrets_path, output)
        self.assertNotIn("replace-with", output)

    def test_production_requires_the_secrets(self):
        code, output, _ = check(path=os.path.join(SOURCE_DIR, "config/config.example.yaml"), env=clean_environment())
        self.assertEqual(code, 2, output)
        self.assertIn("app.control_token: is not set (app.env is production)", output)
        self.assertIn("app.secret_key: is not set (app.env is production)", output)

    def test_production_refuses_short_or_patterned_secrets(self):
        env = clean_environment()
        env["UNSHELVER_CONTROL_TOKEN"] = "0123456789abcdef0123"  # 20 characters: fine in development
        env["UNSHELVER_SECRET_KEY"] = "abcdefgh" * 6
        code, output, _ = check(BASE.replace("  title: Test\n", "  title: Test\n  env: production\n"), env=env)
        self.assertEqual(code, 2, output)
        # Named by where the value came from.
        self.assertIn("<environment>: UNSHELVER_CONTROL_TOKEN: is 20 characters long; at least 32 are required",
                      output)
        self.assertIn("UNSHELVER_SECRET_KEY: is not random", output)
        self.assertNotIn("0123456789abcdef0123", output)
        # The same secrets are accepted in development, where the Python unshelver's 16 suffice.
        self.assertEqual(check(BASE, env=env)[0], 0)

    def test_production_accepts_strong_secrets(self):
        env = clean_environment()
        env["UNSHELVER_CONTROL_TOKEN"] = "k3J9xQ2mV7pL0sD4fG8hZ1cB6nM5tR2w"
        env["UNSHELVER_SECRET_KEY"] = "0f9e8d7c6b5a49382716a5b4c3d2e1f00f9e8d7c6b5a4938"
        code, output, _ = check(BASE.replace("  title: Test\n", "  title: Test\n  env: production\n"), env=env)
        self.assertEqual(code, 0, output)

    def test_secrets_file_others_may_read_is_refused_in_production_and_warned_about_otherwise(self):
        # Issue 15 §12. Strong secrets, so that the file's mode is the only problem.
        directory = tempfile.mkdtemp(prefix="unshelver-config-")
        secrets_path = os.path.join(directory, "secrets.ini")
        with open(secrets_path, "w") as secrets:
            secrets.write("[app]\ncontrol_token = k3J9xQ2mV7pL0sD4fG8hZ1cB6nM5tR2w\n"
                          "secret_key = 0f9e8d7c6b5a49382716a5b4c3d2e1f00f9e8d7c6b5a4938\n")
        production = BASE.replace("  title: Test\n", "  title: Test\n  env: production\n") + "secrets_file: secrets.ini\n"
        path = os.path.join(directory, "config.yaml")
        with open(path, "w") as config_file:
            config_file.write(production)
        os.chmod(secrets_path, 0o644)
        code, output, _ = check(path=path, env=clean_environment())
        self.assertEqual(code, 2, output)
        self.assertIn(f"{secrets_path}: the secrets file is readable by its group and others (mode 0644)", output)
        os.chmod(secrets_path, 0o600)
        code, output, _ = check(path=path, env=clean_environment())
        self.assertEqual(code, 0, output)
        self.assertNotIn("warning", output)
        # In development the same open file loads, with a warning.
        with open(path, "w") as config_file:
            config_file.write(BASE + "secrets_file: secrets.ini\n")
        os.chmod(secrets_path, 0o640)
        code, output, _ = check(path=path, env=clean_environment())
        self.assertEqual(code, 0, output)
        self.assertIn(f"warning: the secrets file {secrets_path} is readable by its group (mode 0640)", output)

    def test_python_unshelver_config_loads_unchanged(self):
        code, output, _ = check(path=os.path.join(SOURCE_DIR, "tests/unit/config/testdata/python_unshelver_config.yaml"))
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

    def test_unterminated_quote_is_reported_at_its_line(self):
        # yaml-cpp lets the value run to the end of the file; the error must not be a missing key.
        code, output, path = check('app:\n  title: "Test\nbuttons:\n  - id: gpu\n    provider: sim\n')
        self.assertEqual(code, 2, output)
        self.assertIn(f"{path}:2:10: YAML syntax error", output)
        self.assertNotIn("missing required key", output)

    def test_missing_secrets_file_names_the_key_and_its_line(self):
        code, output, path = check(BASE + "secrets_file: /nonexistent/secrets.ini\n")
        self.assertEqual(code, 2, output)
        self.assertIn(f"{path}:6:1: secrets_file: cannot read /nonexistent/secrets.ini", output)

    def test_missing_templates_dir_is_invalid_as_run_finds_it(self):
        code, output, path = check(BASE + "templates_dir: /nonexistent/templates\n")
        self.assertEqual(code, 2, output)
        self.assertIn(f"{path}:6:1: templates_dir: /nonexistent/templates", output)
        self.assertNotIn("valid (", output)

    def test_state_dir_that_cannot_be_created_is_invalid(self):
        with tempfile.NamedTemporaryFile(prefix="unshelver-not-a-folder-") as blocker:
            code, output, path = check(BASE + f"state_dir: {blocker.name}/state\n")
        self.assertEqual(code, 2, output)
        self.assertIn(f"{path}:6:1: state_dir: cannot create {blocker.name}/state", output)

    def test_managed_caddy_needs_its_template(self):
        text = (BASE + "    public_base_url: http://chat.localhost/\n"
                "caddy:\n  manage: true\n  launcher_url: http://gpu.localhost\n"
                "  template: /nonexistent/Caddyfile.template\n")
        code, output, path = check(text)
        self.assertEqual(code, 2, output)
        self.assertIn(f"{path}:10:3: caddy.template: cannot read file /nonexistent/Caddyfile.template", output)
        # The same file checks run when `run` starts, which refuses with exit 2 before binding.
        result = subprocess.run([BINARY, "run", "--config", path], capture_output=True, text=True, timeout=10)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("caddy.template: cannot read file", result.stderr)

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
