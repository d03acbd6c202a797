"""Print the console's requirements from pyproject.toml, one a line: the dependencies, plus those of the
extras named in the first argument (comma separated). The image installs them in a layer of their own,
rebuilt only when pyproject.toml changes."""

import sys
import tomllib

with open("pyproject.toml", "rb") as file:
    project = tomllib.load(file)["project"]
requirements = list(project["dependencies"])
for extra in filter(None, (sys.argv[1] if len(sys.argv) > 1 else "").split(",")):
    requirements += [r for r in project["optional-dependencies"][extra.strip()] if not r.startswith("hanami-console")]
print("\n".join(requirements))
