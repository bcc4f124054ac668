"""The server against its own description and in a browser: schemathesis
generates requests from the committed OpenAPI document (docs/openapi.json,
which the server serves at /openapi.json) and checks every response for a
server error, an undocumented status, content type or body, and a
malformed request accepted; headless Chromium loads the canvas page, which
streams a completion with canvas events and draws the cells filling in."""
import html
import os
import re
import shutil
import subprocess

import pytest
import requests

from conftest import ROOT


def test_the_served_document_is_the_committed_one(tiny):
    with open(os.path.join(ROOT, "docs", "openapi.json"), encoding="utf-8") as f:
        assert requests.get(tiny.url + "/openapi.json", timeout=10).text == f.read()


def test_schemathesis(serve, tmp_path):
    tool = os.environ.get("UNMASK_SCHEMATHESIS") or shutil.which("schemathesis")
    if not tool:
        pytest.skip("schemathesis is not installed (tests/serve/run.sh installs it)")
    s = serve("--max-tokens", "64", "--gen-length", "16", "--block-length", "16")
    checks = ("not_a_server_error,status_code_conformance,content_type_conformance,"
              "response_schema_conformance,negative_data_rejection")
    r = subprocess.run([tool, "run", s.url + "/openapi.json", "--max-examples", "25", "--seed", "1",
                        "--checks", checks, "--request-timeout", "60", "--workers", "2", "--no-color"],
                       capture_output=True, text=True, timeout=900, cwd=tmp_path)
    print(r.stdout[-4000:])
    assert r.returncode == 0, r.stdout[-8000:] + r.stderr[-2000:]
    assert s.proc.poll() is None, "the server died"


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def test_the_page_draws_a_canvas_stream(tiny):
    browser = chromium()
    if not browser:
        pytest.skip("no Chromium (tests/serve/run.sh installs Debian's)")
    query = "prompt=In%20the%20beginning&max_tokens=16&block_length=16&steps=8"
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          "--virtual-time-budget=60000", "--dump-dom", f"{tiny.url}/?autostart=1&{query}"],
                         capture_output=True, text=True, timeout=180).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:2000]
    attributes = dict(re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1)))
    assert attributes.get("state") == "done", (attributes, re.search(r'<div id="status">.*?</div>', dom))
    # Every position drawn, in at most the 8 steps asked for, each cell with the step that committed it.
    assert int(attributes["committed"]) == 16
    assert 1 <= int(attributes["steps"]) <= 8
    cells = re.findall(r'<div class="cell committed" data-step="(\d+)"', dom)
    assert len(cells) == 16 and all(0 <= int(step) < 8 for step in cells)
    # The text it shows is the completion's.
    text = html.unescape(re.search(r'<div id="text">(.*?)</div>', dom, re.S).group(1))
    expected = requests.post(tiny.v1 + "/completions", timeout=60, json={
        "prompt": "In the beginning", "max_tokens": 16, "block_length": 16, "steps": 8, "temperature": 0}).json()
    assert text == expected["choices"][0]["text"]
