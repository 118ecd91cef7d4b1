"""The dashboard's page, script and style ship with the package and load nothing from
elsewhere: no CDN, no font or script from another host."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = resources.files("elfc.ui") / "static"


def test_every_asset_is_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["tool"]["setuptools"]["package-data"]["elfc.ui"] == ["static/*"]
    assert pyproject["project"]["optional-dependencies"]["ui"]
    names = {p.name for p in STATIC.iterdir()}
    assert names == {"index.html", "app.js", "style.css"}


def test_the_page_refers_only_to_its_own_server() -> None:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    refs = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert refs == [
        "data:,",
        "/static/style.css",
        "/static/app.js",
        "/",
        "/",
        "/failures",
        "/elves",
    ]
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC / name).read_text(encoding="utf-8")
        external = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text)
        assert external in ([], ["http://www.w3.org"]), (name, external)  # the SVG namespace
    style = (STATIC / "style.css").read_text(encoding="utf-8")
    assert "@import" not in style and "url(" not in style


def test_the_script_never_parses_values_as_html() -> None:
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
