"""Open the Snakemake HTML report in headless Chromium and say what a reader sees.

Snakemake 9 reports are a single-page app: the results and their captions exist only after the
page's JavaScript has run, and a figure or table is only shown once the reader opens it. `render`
therefore drives the report's own app object through the Chrome DevTools protocol (over
`--remote-debugging-pipe`, so only the standard library is needed): for every result it opens the
result's description (caption) and then its view, and records whether the image decoded
(naturalWidth > 0) or how many <table> elements the embedded HTML page rendered.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The closed network refuses Chromium's own background connections; these flags keep it offline.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-breakpad", "--disable-crash-reporter", "--mute-audio",
         "--window-size=1400,1000")


def ensure_chromium() -> str:
    """Path of a Chromium binary; installs Debian's `chromium` with apt-get when root and missing."""
    override = os.environ.get("BLURBENCH_CHROMIUM")
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise RuntimeError(f"BLURBENCH_CHROMIUM={override!r} is not an executable file")
        return override
    found = next((p for p in map(shutil.which, CANDIDATES) if p), None)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(
            "Chromium is needed to test that the HTML report opens in a browser, but none of "
            f"{', '.join(CANDIDATES)} is on PATH and it cannot be installed here (needs root and "
            "apt-get). Install it (`apt-get install -y chromium`), point BLURBENCH_CHROMIUM at a "
            "binary, or set BLURBENCH_BROWSER_TESTS=0 to opt out.")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {done.returncode}) while installing "
                               f"Chromium for the report test:\n{done.stderr[-2000:]}")
    found = next((p for p in map(shutil.which, CANDIDATES) if p), None)
    if not found:
        raise RuntimeError("apt-get installed `chromium` but no Chromium binary is on PATH")
    return found


class _DevTools:
    """Minimal Chrome DevTools protocol client: NUL-terminated JSON on fd 3 (to) and fd 4 (from)."""

    def __init__(self, to_browser: int, from_browser: int):
        self._out, self._in = to_browser, from_browser
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._out, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                return reply["result"]
            if "method" in reply:
                self.events.append(reply)

    def _read(self, deadline: float, method: str) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer DevTools {method} in time")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed the DevTools pipe during {method} (crashed?)")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)


def _evaluate(cdp: _DevTools, session: str, expression: str, timeout: float = 30.0,
              context: int | None = None):
    """Value of a JS expression (promises awaited); a JS exception becomes a RuntimeError."""
    params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
    if context is not None:
        params["contextId"] = context
    res = cdp.call("Runtime.evaluate", params, session, timeout=timeout)
    if "exceptionDetails" in res:
        details = res["exceptionDetails"]
        text = details.get("exception", {}).get("description") or details.get("text")
        raise RuntimeError(f"JavaScript error in the report page: {text}")
    return res["result"].get("value")


# Helpers injected into the page. `app`, `results`, `categories` and `ToggleViewManager` are the
# report's own globals: the first is the React app whose methods the navigation links call, the
# last one decides, from the file type, how a result is shown (image, iframe, ...).
_PAGE_HELPERS = r"""
window.__rb = {
  settle: () => new Promise(r => requestAnimationFrame(() => setTimeout(r, 20))),
  async until(pred, ms) {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) return false;
      await new Promise(r => setTimeout(r, 25));
    }
    return true;
  },
  async caption(path) {
    app.showResultInfo(path);
    await __rb.until(() => app.state.navbarMode === "resultinfo" && app.state.resultPath === path, 5000);
    await __rb.settle();
    const heading = Array.from(document.querySelectorAll("li")).find(li => li.textContent === "Description");
    return heading && heading.nextElementSibling ? heading.nextElementSibling.textContent.trim() : null;
  },
  async show(path) {
    const uri = results[path].data_uri;
    new ToggleViewManager(app).handleSelectedResult(path);
    await __rb.until(() => app.state.contentPath === uri, 5000);
    await __rb.settle();
    const img = Array.from(document.images).find(i => i.src === uri);
    if (img) {
      await __rb.until(() => img.complete, 10000);
      try { await img.decode(); } catch (err) {}
      return {view: "img", complete: img.complete, width: img.naturalWidth, height: img.naturalHeight};
    }
    const frame = Array.from(document.querySelectorAll("iframe")).find(f => f.src === uri);
    return {view: frame ? "iframe" : app.state.content};
  },
  images() {
    const all = Array.from(document.images);
    return {n: all.length, broken: all.filter(i => !(i.complete && i.naturalWidth > 0)).length};
  },
};
true
"""

_FRAME_CONTENT = r"""
document.readyState === "complete" ? {tables: document.querySelectorAll("table").length,
                                      text: document.body ? document.body.innerText : ""} : null
"""


def _frame_content(cdp: _DevTools, session: str, timeout: float = 10.0) -> dict:
    """Tables and text of the iframe the report shows an HTML result in, once it has loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = cdp.call("Page.getFrameTree", session=session)["frameTree"].get("childFrames", [])
        if children:
            frame_id = children[-1]["frame"]["id"]
            try:
                ctx = cdp.call("Page.createIsolatedWorld", {"frameId": frame_id, "worldName": "rb"},
                               session)["executionContextId"]
                got = _evaluate(cdp, session, _FRAME_CONTENT, context=ctx)
            except RuntimeError:  # frame replaced while we looked; retry
                got = None
            if got is not None:
                return got
        time.sleep(0.05)
    raise TimeoutError("the report's iframe for an HTML result did not finish loading")


# Puts the DevTools pipe on fd 3 (browser reads) and fd 4 (browser writes), then becomes the browser.
_TRAMPOLINE = ("import os, sys; r, w = map(int, sys.argv[1:3]); os.dup2(r, 3); os.dup2(w, 4); "
               "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])")


def _high_fd(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def render(html_path: str | os.PathLike, timeout: float = 60.0) -> dict:
    """Open `html_path` in headless Chromium, open every result like a reader would, report it.

    Returns {"title", "categories": {category: [subcategories]}, "results": [per-result dicts with
    path, category, subcategory, mime, caption, view, and image size or rendered tables],
    "captions": [caption texts], "images": result images shown, "broken_images": those that did not
    decode, "page_broken_images": most undecoded <img> of the page (logo included) in any view,
    "tables": <table> elements rendered in HTML results,
    "errors": uncaught JavaScript exceptions and console errors}.
    """
    path = Path(html_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"report not found: {path}")
    binary = ensure_chromium()
    to_r, to_w = os.pipe()
    from_r, from_w = os.pipe()
    # The browser's ends move to fds >= 10 first, so that placing them on 3 and 4 cannot clobber them.
    to_r, from_w = (_high_fd(fd) for fd in (to_r, from_w))
    with tempfile.TemporaryDirectory(prefix="rb-chromium-") as profile, tempfile.TemporaryFile() as log:
        argv = [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(to_r), str(from_w), *argv],
                                pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        os.close(to_r)
        os.close(from_w)
        try:
            return _inspect(_DevTools(to_w, from_r), path.as_uri(), time.monotonic() + timeout)
        except (RuntimeError, TimeoutError) as err:
            if _exited(proc):  # the browser died: its own words say why
                log.seek(0)
                stderr = log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"{err}\nChromium exited with {proc.returncode}:\n{stderr}") from err
            raise
        finally:
            _close(proc, to_w, from_r)


def _exited(proc: subprocess.Popen, wait: float = 2.0) -> bool:
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        return False
    return True


def _close(proc: subprocess.Popen, to_w: int, from_r: int) -> None:
    """Stop the browser and every process it started (its own session), then close the pipes."""
    os.close(to_w)  # the browser exits when its DevTools pipe closes
    _exited(proc, wait=5.0)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # renderers/zygotes left behind, if any
    except ProcessLookupError:
        pass
    proc.wait()
    os.close(from_r)


def _inspect(cdp: _DevTools, url: str, deadline: float) -> dict:
    left = lambda: max(1.0, deadline - time.monotonic())  # noqa: E731
    target = cdp.call("Target.createTarget", {"url": "about:blank"}, timeout=left())["targetId"]
    session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    cdp.call("Runtime.enable", session=session)
    cdp.call("Page.enable", session=session)
    cdp.call("Page.navigate", {"url": url}, session)
    ready = ("(async () => { const end = Date.now() + %d; while (!(typeof app !== 'undefined' && "
             "app.state && document.querySelector('#app').children.length > 0)) { if (Date.now() > end) "
             "return false; await new Promise(r => setTimeout(r, 50)); } return true; })()")
    # Page.navigate returns before the new document exists; retry until its scripts are reachable.
    while not _try_evaluate(cdp, session, ready % 500, timeout=10.0):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the report at {url} did not render its app within the time limit")
    _evaluate(cdp, session, _PAGE_HELPERS)
    page = _evaluate(cdp, session, """({
        title: document.title,
        categories: Object.fromEntries(Object.entries(categories).map(([c, s]) => [c, Object.keys(s)])),
        results: Object.entries(categories).flatMap(([c, subs]) => Object.entries(subs).flatMap(
            ([s, paths]) => paths.map(p => ({path: p, category: c, subcategory: s,
                                               mime: results[p].mime_type || null})))),
    })""")
    shown = []
    for entry in page["results"]:
        p = json.dumps(entry["path"])
        entry["caption"] = _evaluate(cdp, session, f"__rb.caption({p})", timeout=left())
        entry.update(_evaluate(cdp, session, f"__rb.show({p})", timeout=left()))
        if entry["view"] == "iframe":
            frame = _frame_content(cdp, session, timeout=min(10.0, left()))
            entry.update(tables=frame["tables"], text=frame["text"])
        shown.append(_evaluate(cdp, session, "__rb.images()"))
        if time.monotonic() > deadline:
            raise TimeoutError("rendering the report's results took longer than the time limit")
    images = [r for r in page["results"] if r["view"] == "img"]
    return {
        "title": page["title"],
        "categories": page["categories"],
        "results": page["results"],
        "captions": [r["caption"] for r in page["results"] if r["caption"]],
        "images": len(images),
        "broken_images": sum(1 for r in images if not (r["complete"] and r["width"] > 0)),
        "page_broken_images": max((s["broken"] for s in shown), default=0),
        "tables": sum(r.get("tables", 0) for r in page["results"]),
        "errors": _page_errors(cdp.events),
    }


def _try_evaluate(cdp: _DevTools, session: str, expression: str, timeout: float):
    try:
        return _evaluate(cdp, session, expression, timeout=timeout)
    except RuntimeError as err:  # navigation replaced the context mid-call, or app not defined yet
        if "Execution context was destroyed" in str(err) or "Cannot find context" in str(err):
            time.sleep(0.05)
            return None
        raise


def _page_errors(events: list[dict]) -> list[str]:
    errors = []
    for ev in events:
        if ev["method"] == "Runtime.exceptionThrown":
            d = ev["params"]["exceptionDetails"]
            errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif ev["method"] == "Runtime.consoleAPICalled" and ev["params"]["type"] == "error":
            args = ev["params"]["args"]
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
    return errors
