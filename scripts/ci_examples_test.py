"""Checks examples/ci/*.yml: they parse, have the jobs the README promises,
and every `fleetform ...` command in them uses a subcommand and flags the
built binary accepts (so the examples cannot drift from the CLI).

Usage: python3 scripts/ci_examples_test.py PATH-TO-fleetform-BINARY
(run by scripts/test with the local EC2 endpoint's Python, which has PyYAML).
"""

import re
import shlex
import subprocess
import sys
import unittest
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BINARY = None


def load(name):
    return yaml.safe_load((ROOT / "examples" / "ci" / name).read_text())


def shell_lines(node):
    """Every string of a run:/script: block, split into lines."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script", "before_script"):
                items = value if isinstance(value, list) else [value]
                for item in items:
                    yield from str(item).splitlines()
            else:
                yield from shell_lines(value)
    elif isinstance(node, list):
        for item in node:
            yield from shell_lines(item)


def fleetform_commands(document):
    for line in shell_lines(document):
        line = line.strip()
        for match in re.finditer(r"(?:^|[;&|]\s*)fleetform\s+([^;&|]+)", line):
            yield shlex.split(match.group(1).replace("\\", ""))


def help_of(subcommand):
    out = subprocess.run(
        [BINARY, subcommand, "--help"], capture_output=True, text=True, check=False
    )
    return out.returncode, out.stdout


class CiExamples(unittest.TestCase):
    def check_commands(self, document):
        seen = []
        for words in fleetform_commands(document):
            sub, args = words[0], words[1:]
            code, text = help_of(sub)
            self.assertEqual(code, 0, f"`fleetform {sub}` is not a subcommand")
            for arg in args:
                if arg.startswith("-"):
                    flag = "--" + arg.lstrip("-").split("=")[0]
                    self.assertIn(flag, text, f"`fleetform {sub}` has no {flag}")
            seen.append(sub)
        return seen

    def test_github_actions_plans_pull_requests_and_applies_main(self):
        doc = load("github-actions.yml")
        triggers = doc.get("on") or doc.get(True)  # YAML 1.1 reads `on` as true
        self.assertIn("pull_request", triggers)
        self.assertEqual(triggers["push"]["branches"], ["main"])
        plan, apply = doc["jobs"]["plan"], doc["jobs"]["apply"]
        self.assertIn("pull_request", plan["if"])
        self.assertIn("push", apply["if"])
        steps = " ".join(str(s) for s in plan["steps"])
        self.assertIn("actions/upload-artifact", steps)
        self.assertIn("gh pr comment", steps)
        self.assertIn("--markdown plan.md", steps)
        apply_steps = " ".join(str(s) for s in apply["steps"])
        self.assertIn("gh run download", apply_steps)
        self.assertIn("fleetform apply plan.json --auto-approve", apply_steps)
        self.assertEqual(sorted(set(self.check_commands(doc))), ["apply", "plan"])

    def test_gitlab_ci_plans_merge_requests_and_applies_the_default_branch(self):
        doc = load("gitlab-ci.yml")
        self.assertEqual(doc["stages"], ["plan", "apply"])
        plan, apply = doc["fleetform-plan"], doc["fleetform-apply"]
        self.assertIn("merge_request_event", plan["rules"][0]["if"])
        self.assertIn("plan.json", plan["artifacts"]["paths"])
        self.assertIn("/notes", " ".join(plan["script"]))
        self.assertIn("CI_DEFAULT_BRANCH", apply["rules"][0]["if"])
        self.assertEqual(apply["resource_group"], "fleetform-apply")
        self.assertIn("fleetform apply plan.json --auto-approve", " ".join(apply["script"]))
        self.assertEqual(sorted(set(self.check_commands(doc))), ["apply", "plan"])

    def test_the_flag_check_can_fail(self):
        with self.assertRaises(AssertionError):
            self.check_commands({"script": ["fleetform plan . --no-such-flag"]})


if __name__ == "__main__":
    BINARY = sys.argv.pop(1)
    unittest.main()
