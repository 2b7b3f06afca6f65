"""The console's files over real HTTP: served without a token, with their types, no-cache and a strict CSP."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import httpx
import pytest

from tests.support.admin import AdminProxy

REPO = Path(__file__).resolve().parents[2]
UI = files("llmproxy.api.admin").joinpath("ui")
TYPES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


@pytest.mark.parametrize(("name", "content_type"), TYPES.items())
def test_each_file_is_served_without_a_token_with_its_type_and_security_headers(
    proxy_url: str, name: str, content_type: str
) -> None:
    response = httpx.get(f"{proxy_url}/admin/ui/{name}")  # the session proxy has no admin token: files need none
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.content == UI.joinpath(name).read_bytes()


def test_the_page_is_the_index_and_holds_no_inline_script_or_style(proxy_url: str) -> None:
    page = httpx.get(f"{proxy_url}/admin/ui/")
    assert page.status_code == 200
    assert page.content == UI.joinpath("index.html").read_bytes()
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page.text, flags=re.S)
    assert scripts == [""]  # one module script, loaded from its file
    assert re.search(r'<script type="module" src="app.js">', page.text)
    assert "style=" not in page.text and "<style" not in page.text
    assert not re.search(r"\son[a-z]+=", page.text)  # no inline event handlers either


def test_without_the_slash_the_console_redirects_to_its_page(proxy_url: str) -> None:
    response = httpx.get(f"{proxy_url}/admin/ui")
    assert response.status_code == 308
    assert response.headers["location"] == "ui/"  # relative: keeps any path prefix in front of the proxy
    assert httpx.get(f"{proxy_url}/admin/ui", follow_redirects=True).url.path == "/admin/ui/"


def test_an_unchanged_file_is_answered_304(proxy_url: str) -> None:
    first = httpx.get(f"{proxy_url}/admin/ui/app.js")
    again = httpx.get(f"{proxy_url}/admin/ui/app.js", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


@pytest.mark.parametrize("path", ["nothing.js", "..%2Fauth.py", "auth.py", "ui%2Fapp.js", "%2E%2E%2Fpayloads.py"])
def test_only_the_console_files_are_served(proxy_url: str, path: str) -> None:
    response = httpx.get(f"{proxy_url}/admin/ui/{path}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_page_is_served_while_the_admin_api_refuses_without_a_token(admin_proxy: AdminProxy) -> None:
    assert httpx.get(admin_proxy.url + "/admin/ui/").status_code == 200
    assert httpx.get(admin_proxy.url + "/admin/overview").status_code == 401


def test_a_wheel_of_the_package_carries_the_console(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(REPO / "llmproxy", source / "llmproxy", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*build, str(source)], check=True, capture_output=True, timeout=120)
    (wheel,) = tmp_path.glob("llmproxy-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = {name.removeprefix("llmproxy/api/admin/ui/") for name in archive.namelist() if "/admin/ui/" in name}
    assert packed == {item.name for item in UI.iterdir() if item.is_file()}
