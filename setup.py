"""Only what pyproject.toml cannot say: templates/ and static/ (top of the repo) ship inside the package."""

from pathlib import Path

from setuptools import find_packages, setup


def data_packages(package: str, folder: str) -> list[str]:
    # Every folder below is listed, so setuptools treats them as data packages of the console.
    root = Path(folder)
    return [package] + sorted(
        ".".join([package, *path.relative_to(root).parts]) for path in root.rglob("*") if path.is_dir()
    )


setup(
    packages=find_packages(include=["webconsole", "webconsole.*"])
    + data_packages("webconsole.templates", "templates")
    + data_packages("webconsole.static", "static")
)
