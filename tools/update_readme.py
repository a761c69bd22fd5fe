#!/usr/bin/env python
"""Regenerates the "Registered models" table of README.md from list_models().

    python tools/update_readme.py          # rewrite README.md in place
    python tools/update_readme.py --check  # exit 1 if the table is stale
"""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BEGIN = "<!-- models:begin -->"
END = "<!-- models:end -->"


def models_table():
    from keras_glimpse import registry

    lines = ["| name | builder | description | paper number |", "|---|---|---|---|"]
    for name in registry.list_models():
        p = registry.get_preset(name)
        paper = ""
        if "paper_value" in p:
            paper = f"{p.get('paper_metric', 'value')} {p['paper_value']}"
            if "paper_setting" in p:  # a tiny analogue: the number is the paper's setting's
                paper += f" ({p['paper_setting']})"
        desc = p.get("description", "").replace("|", "\\|")
        lines.append(f"| `{name}` | {p['builder']} | {desc} | {paper} |")
    return "\n".join(lines)


def render(text):
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md lacks the {BEGIN} / {END} markers.")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{models_table()}\n{END}{tail}"


def main(argv):
    path = ROOT / "README.md"
    text = path.read_text()
    new = render(text)
    if "--check" in argv:
        if new != text:
            print("README.md models table is stale: run python tools/update_readme.py")
            return 1
        return 0
    path.write_text(new)
    print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
