"""What the README tells a new user to type works, and the files it names exist."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_notebook_snippet_runs(tmp_path, monkeypatch):
    # It called t.session.export(...), which Session does not have.
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    small = block.replace('activation="sigmoid")', 'activation="sigmoid", steps=3)')
    assert small != block  # kept tiny: the README's run is 1000 steps
    monkeypatch.chdir(tmp_path)
    exec(compile(small, "README.md", "exec"), {})
    assert sorted(p.name for p in (tmp_path / "my-run").iterdir()) == ["events.csv", "layers.csv", "session.json", "steps.csv"]


def test_readme_names_only_files_of_the_repository():
    # It once pointed at a design file beside the checkout, outside the repository a user clones.
    named = set(re.findall(r"`((?:\.\./|docs/|resources/)[^` ]+)`", README)) | set(re.findall(r"\]\(([^)#]+)\)", README))
    assert named
    assert [n for n in named if not n.startswith("http") and "*" not in n and not (ROOT / n).exists()] == []


def test_readme_counts_the_shipped_exercises():
    n = len(list((ROOT / "resources" / "exercises").glob("*.toml")))
    words = {6: "Six", 7: "Seven", 8: "Eight", 9: "Nine", 10: "Ten"}
    assert f"{words[n]} exercises ship" in README
