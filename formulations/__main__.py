"""``python -m formulations``: the tables of constraint families, parameters and variables (markdown);
``--write docs/model.md`` replaces the generated block of that document."""

import sys

from formulations import registry

if len(sys.argv) == 3 and sys.argv[1] == "--write":
    print("updated" if registry.write_docs(sys.argv[2]) else "up to date")
else:
    print(registry.markdown_tables(), end="")
