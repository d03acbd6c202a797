"""Only what pyproject.toml cannot say: templates/ and static/ (top of the repo) ship inside the package."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["webconsole", "webconsole.*"]) + ["webconsole.templates", "webconsole.static"])
