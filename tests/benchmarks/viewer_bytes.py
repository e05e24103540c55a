"""Viewer benchmark over an emulated 1 Mbit/s, 100 ms link, in Chromium with a cold cache: bytes and
seconds to the first visible image (page, code and image) and to full fidelity, for a full-size
radiograph and the 28-slice head CT; in the same run the same images in the Orthanc Web Viewer
plugin (Debian `orthanc-webviewer`) as the peer. On demand, not in CI:

    make static && python tests/benchmarks/viewer_bytes.py [--rate-bps 1000000] [--rtt-s 0.1]

What runs (started here on free ports in a temp dir, stopped at the end): a throw-away Orthanc for
Joliba, Django `runserver` (DEBUG off, collected static files, gzip as in production) on SQLite,
one Celery worker (file-system broker) that makes the renditions; a second Orthanc with the Web
Viewer plugin loaded through its Plugins config. Each is reached through its own
tests/slowlink.py proxy, one measurement at a time, each in a new browser context (cold cache).
Signing in happens on the direct address: the proxied origin's HTTP cache stays empty. Servers are
warm (each page asked once directly before the measurement, the peer's viewer opened once), the
browser cold.

Keys (radiograph at the top level; `ct` holds the same for the series):
  first_image_s / first_image_bytes: from navigation to the first image visible on the reading page
    (an <img> loaded and laid out, or the viewer's canvas drawing a rendition), bytes down the link
    (HTML, CSS, JS and image); code_bytes: JS + CSS bodies among them.
  full_fidelity_s / full_fidelity_bytes: until the viewer shows the shown image's lossless rendition
    (data-source="full"); bytes: the full renditions of the image (CT: of all 28 slices, and
    series_full_s when all are in). Without the viewer script, the renditions are fetched by the
    page itself and `full_fidelity_by` says so.
  lossless_compressed_bytes: JPEG-LS (pyjpegls) of the same stored pixels; full_vs_jpeg_ls.
  peer: first_image_s / first_image_bytes of the Orthanc Web Viewer (canvas with pixels).
Prints progress on stderr, a one-line summary, then the JSON on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from orthanc.config import archive_config, write_config  # noqa: E402
from orthanc.server import OrthancProcess, free_port, orthanc_binary  # noqa: E402
from tests.benchmarks.upload_slow_link import Children, say, wait_until  # noqa: E402
from tests.helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.paths import CT_HEAD, REAL_OTHER  # noqa: E402
from tests.slowlink import SlowLink  # noqa: E402

RADIOGRAPH = REAL_OTHER / "CR_tibia_Fuji_WG04-RG3" / "RG3_UNCR.dcm"  # 1760², 10-bit CR, 6.2 MB
CT_SERIES = [CT_HEAD / f"{i:02d}.dcm" for i in range(1, 29)]
WEBVIEWER = Path("/usr/share/orthanc/plugins/libOrthancWebViewer.so")
PASSWORD = "bench-" + os.urandom(6).hex()

# The viewer's canvas says what it drew in data-source; otherwise (no script, or the page before
# the viewer) the first laid-out, loaded image of the page's image area.
FIRST_VISIBLE = """() => {
  const vw = document.querySelector('section.vw');
  if (vw && (vw.dataset.source === 'preview' || vw.dataset.source === 'full'))
    return 'canvas:' + vw.dataset.source;
  for (const img of document.querySelectorAll('section.vw img, .ai-grid img, .grid img')) {
    if (img.classList.contains('ai-overlay')) continue;
    const r = img.getBoundingClientRect();
    if (img.complete && img.naturalWidth > 0 && r.width > 0 && r.height > 0 &&
        getComputedStyle(img).visibility !== 'hidden' && getComputedStyle(img).display !== 'none')
      return 'img';
  }
  return null;
}"""
FULL_SHOWN = (
    "() => { const vw = document.querySelector('section.vw'); return vw && vw.dataset.source === 'full'; }"
)
FULL_COUNT = (
    "() => { const vw = document.querySelector('section.vw');"
    " return vw ? Number(vw.dataset.fullLoaded || 0) : 0; }"
)
HAS_VIEWER = "() => !!document.querySelector('section.vw[data-manifest].vw-js')"
CANVAS_DRAWN = """() => {
  for (const c of document.querySelectorAll('canvas')) {
    if (!c.width || !c.height || c.getBoundingClientRect().width === 0) continue;
    let ctx = null;
    try { ctx = c.getContext('2d'); } catch (e) { continue; }
    if (!ctx) continue;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4 * 61) if (d[i] | d[i + 1] | d[i + 2]) return true;
  }
  return false;
}"""
FETCH_ALL = """async (urls) => {
  let n = 0;
  for (const u of urls) {
    const r = await fetch(u, {credentials: 'same-origin'});
    n += (await r.arrayBuffer()).byteLength;
  }
  return n;
}"""


# --- the platform ----------------------------------------------------------------------------------
class Platform:
    """Joliba as the quickstart runs it, with DEBUG off and its static files collected."""

    def __init__(self, root: Path, children: Children) -> None:
        self.root, self.children = root, children
        self.var = root / "var"
        self.port = free_port()
        self.env: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Platform:
        self.orthanc = self.children.orthanc(self.root / "orthanc-joliba")
        for folder in ("celery-queue", "celery-processed", "celery-control", "spool", "models"):
            (self.var / folder).mkdir(parents=True, exist_ok=True)
        drop = {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "INGEST_SPOOL_DIR"}
        self.env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("JOLIBA_")}
        self.env.update(
            {
                "JOLIBA_DATA_DIR": str(self.var),
                "DEBUG": "0",
                "SECRET_KEY": "bench-" + os.urandom(24).hex(),
                "ORTHANC_URL": self.orthanc.url,
                "ORTHANC_USERNAME": self.orthanc.username,
                "ORTHANC_PASSWORD": self.orthanc.password,
                "PYTHONPATH": str(REPO / "platform"),
                "DJANGO_SETTINGS_MODULE": "joliba.settings",
                "JOLIBA_2FA_REQUIRED": "0",  # bytes of the viewer measured here, not the sign-in
            }
        )
        manage = [sys.executable, str(REPO / "manage.py")]
        run = {"env": self.env, "check": True, "cwd": REPO, "timeout": 300}
        subprocess.run([*manage, "migrate", "--noinput", "-v0"], **run)
        subprocess.run([*manage, "collectstatic", "--noinput", "-v0"], **run)
        made = subprocess.run(
            [
                *manage,
                "shell",
                "-c",
                "from accounts.models import Site, User\n"
                "from tokens.service import issue\n"
                "site = Site.objects.create(code='bench', name='Banc', region='Kayes')\n"
                "t = User.objects.create_user(\n"
                "    username='tech.bench', password=None, role='technician', site=site)\n"
                f"r = User.objects.create_user(\n"
                f"    username='dr.bench', password='{PASSWORD}', role='radiologist')\n"
                "from accounts.models import read_everything\n"
                "read_everything(r)  # every modality, every site: may open and claim\n"
                "print(issue(t, name='banc')[1], issue(r, name='banc')[1])\n",
            ],
            capture_output=True,
            text=True,
            **run,
        )
        self.tech_token, self.dr_token = made.stdout.strip().splitlines()[-1].split()
        web = self.children.popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            env=self.env,
            cwd=REPO,
            stdout=(self.root / "web.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        worker_log = self.root / "worker.log"
        worker = self.children.popen(
            [sys.executable, "-m", "celery", "-A", "joliba", "worker", "--pool=solo", "--concurrency=1",
             "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
            env=self.env,
            cwd=REPO,
            stdout=worker_log.open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_until(lambda: requests.get(f"{self.url}/accounts/login/", timeout=2).ok, 90, "runserver", web)
        wait_until(lambda: "ready" in worker_log.read_text(errors="replace"), 90, "celery worker", worker)
        return self

    def api(self, token: str) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        return session

    def send(self, files: list[Path], indication: str) -> int:
        handles = [("files", (p.name, p.open("rb"), "application/dicom")) for p in files]
        try:
            answer = self.api(self.tech_token).post(
                f"{self.url}/api/v1/studies/upload/",
                files=handles,
                data={"indication": indication, "priority": "urgent"},
                timeout=600,
            )
        finally:
            for _, (_, f, _) in handles:
                f.close()
        answer.raise_for_status()
        verdicts = answer.json()["verdicts"]
        assert all(v["outcome"] == "stored" for v in verdicts), verdicts
        return int(verdicts[0]["study"])

    def claim_when_queued(self, pk: int) -> None:
        session = self.api(self.dr_token)
        wait_until(
            lambda: session.post(f"{self.url}/api/v1/studies/{pk}/claim/", timeout=10).status_code == 200,
            180,
            f"claim of study {pk}",
        )


def signed_in_context(browser, platform: Platform):
    """A new context (empty cache), signed in on the direct address: cookies are per host, the
    HTTP cache per origin, so the proxied origin starts cold but authenticated."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    page.goto(f"{platform.url}/accounts/login/")
    page.fill("#id_auth-username", "dr.bench")
    page.fill("#id_auth-password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    page.close()
    return context


def manifest(platform: Platform, context, pk: int) -> dict:
    answer = context.request.get(f"{platform.url}/studies/{pk}/viewer.json")
    return answer.json()


def wait_renditions(platform: Platform, context, pk: int, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = manifest(platform, context, pk)
        if found["ready"]:
            return found
        time.sleep(1)
    raise RuntimeError(f"renditions of study {pk} not ready within {timeout:.0f} s")


def watch(page, checks: dict[str, str]) -> None:
    """Record in the page, on every animation frame, when each check first holds: the time
    (performance.now(), from the start of navigation) is the page's own, not this process's
    polling. Installed before navigation."""
    body = ",".join(f"{json.dumps(name)}: {script}" for name, script in checks.items())
    page.add_init_script(
        f"""(() => {{
  const checks = {{{body}}};
  window.__seen = {{}};
  const tick = () => {{
    for (const [k, f] of Object.entries(checks)) {{
      if (window.__seen[k]) continue;
      let v = null;
      try {{ v = f(); }} catch (e) {{}}
      if (v) window.__seen[k] = {{t: performance.now(), v: v}};
    }}
    if (Object.keys(window.__seen).length < Object.keys(checks).length) requestAnimationFrame(tick);
  }};
  requestAnimationFrame(tick);
}})();"""
    )


def seen(page, name: str, timeout: float):
    """(value, seconds after navigation start) once the check `name` held, else (None, None)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    key = json.dumps(name)
    try:
        page.wait_for_function(f"() => window.__seen && window.__seen[{key}]", timeout=timeout * 1000)
    except PlaywrightTimeout:
        return None, None
    found = page.evaluate(f"() => window.__seen[{key}]")
    return found["v"], found["t"] / 1000


def poll(page, script: str, timeout: float, interval: float = 0.03):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(script)
        if value:
            return value, time.monotonic()
        time.sleep(interval)
    return None, time.monotonic()


# --- measurements ----------------------------------------------------------------------------------
def measure_joliba(browser, platform: Platform, pk: int, found: dict, args) -> dict:
    instances = [i for s in found["series"] for i in s["instances"]]
    full_urls = [u for i in instances for u in (i["full"] or {}).get("frames", [])]
    context = signed_in_context(browser, platform)
    # Sizes asked on the direct address, so the proxied origin's cache stays cold.
    full_bytes = sum(len(context.request.get(platform.url + u).body()) for u in full_urls)
    preview_bytes = len(context.request.get(platform.url + instances[0]["preview"]["url"]).body())
    context.request.get(f"{platform.url}/worklist/{pk}/read/")  # a warm server, as in production
    # Each finished request: (end, duration, path, body bytes, type); end in seconds after
    # navigation, from the browser's own timing (events reach this process a little later).
    waterfall: list[tuple[float, float, str, int, str]] = []

    def on_timed(request) -> None:
        try:
            sizes, timing = request.sizes(), request.timing
            end = timing["startTime"] / 1000 + timing["responseEnd"] / 1000 - wall_start
            waterfall.append(
                (
                    round(end, 3),
                    round(timing["responseEnd"] / 1000, 3),
                    request.url.split("/", 3)[-1][:60],
                    sizes["responseBodySize"],
                    request.resource_type,
                )
            )
        except Exception:  # cancelled requests have no timing
            pass

    with SlowLink(("127.0.0.1", platform.port), rate_bps=args.rate_bps, rtt_s=args.rtt_s) as link:
        page = context.new_page()
        page.on("requestfinished", on_timed)
        series = len(full_urls) if len(full_urls) > 1 else 0
        watch(
            page,
            {
                "first": FIRST_VISIBLE,
                "full": FULL_SHOWN,
                **({"series": f"() => ({FULL_COUNT})() >= {series}"} if series else {}),
            },
        )
        wall_start, before = time.time(), link.stats()["bytes_down"]
        page.goto(f"{link.url}/worklist/{pk}/read/", wait_until="commit")
        how, first_s = seen(page, "first", args.timeout)
        # Counted when this process learns it: a few ms late, so if anything a little over.
        first_bytes = link.stats()["bytes_down"] - before
        page.wait_for_load_state("load")
        before_first = [w for w in sorted(waterfall) if first_s is not None and w[0] <= first_s]
        first_code = sum(w[3] for w in before_first if w[4] in ("script", "stylesheet"))
        for end, took, url, size, _ in before_first:  # what the first image waited for
            say(f"  {end:7.3f} s  (request {took:6.3f} s)  {size:8d} B  /{url}")
        viewer = bool(page.evaluate(HAS_VIEWER))
        result = {
            "first_image_s": round(first_s, 3) if how else None,
            "first_image_bytes": first_bytes,
            "first_image_by": how,
            "code_bytes": first_code,
            "viewer_script": viewer,
            "images": len(instances),
        }
        if viewer:
            shown, full_s = seen(page, "full", args.timeout)
            result["full_fidelity_s"] = round(full_s, 3) if shown else None
            result["full_fidelity_by"] = "viewer (data-source=full)"
            if series:
                done, all_s = seen(page, "series", args.timeout * 4)
                result["series_full_s"] = round(all_s, 3) if done else None
        else:  # previews only (no script yet): the page fetches the renditions itself
            page.evaluate(FETCH_ALL, full_urls[:1])
            result["full_fidelity_s"] = round(time.time() - wall_start, 3)
            result["full_fidelity_by"] = "fetch() in the page (no viewer script)"
        result["bytes_down_total"] = link.stats()["bytes_down"] - before
        page.close()
    context.close()
    result["full_fidelity_bytes"] = full_bytes
    result["preview_bytes"] = preview_bytes  # the first image's preview alone
    return result


def start_peer(root: Path, children: Children) -> OrthancProcess:
    """An Orthanc with the Web Viewer plugin (its own config: the platform's archive has none)."""
    if not WEBVIEWER.exists():
        raise SystemExit("the peer needs the Orthanc Web Viewer plugin: apt-get install orthanc-webviewer")
    server = OrthancProcess(root / "orthanc-peer")

    def start() -> OrthancProcess:
        config = archive_config(
            storage_dir=server.workdir,
            http_port=server.http_port,
            dicom_port=server.dicom_port,
            username=server.username,
            password=server.password,
            stable_age_s=2,
            modalities={},
        )
        config["Plugins"] = [*config.get("Plugins", []), str(WEBVIEWER)]
        config["WebViewer"] = {"CachePath": str(server.workdir / "webviewer-cache"), "Threads": 2}
        write_config(server.config_path, config)
        proc = subprocess.Popen(
            [orthanc_binary(), str(server.config_path)],
            stdout=server.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server._proc = proc
        wait_until(lambda: server.client().system(), 30, "peer orthanc", proc)
        return server

    children.orthancs.append(server)
    return start()


def peer_series(peer: OrthancProcess, files: list[Path]) -> str:
    series = ""
    for path in files:
        answer = requests.post(
            f"{peer.url}/instances", data=path.read_bytes(), auth=(peer.username, peer.password), timeout=120
        )
        answer.raise_for_status()
        series = answer.json()["ParentSeries"]
    return series


def measure_peer(browser, peer: OrthancProcess, series: str, args) -> dict:
    def new_context():
        return browser.new_context(
            viewport={"width": 1366, "height": 768},
            http_credentials={"username": peer.username, "password": peer.password},
        )

    # A warm server, as for Joliba: the plugin decodes and caches the images on first request.
    warm = new_context()
    page = warm.new_page()
    page.goto(f"{peer.url}/web-viewer/app/viewer.html?series={series}")
    poll(page, CANVAS_DRAWN, args.timeout, interval=0.1)
    warm.close()
    context = new_context()
    with SlowLink(("127.0.0.1", peer.http_port), rate_bps=args.rate_bps, rtt_s=args.rtt_s) as link:
        page = context.new_page()
        watch(page, {"first": CANVAS_DRAWN})
        before = link.stats()["bytes_down"]
        page.goto(f"{link.url}/web-viewer/app/viewer.html?series={series}", wait_until="commit")
        drawn, first_s = seen(page, "first", args.timeout)
        result = {
            "first_image_s": round(first_s, 3) if drawn else None,
            "first_image_bytes": link.stats()["bytes_down"] - before,
            "first_image_by": "canvas with pixels" if drawn else "not drawn within the timeout",
        }
        page.close()
    context.close()
    return result


def jpeg_ls_bytes(files: list[Path]) -> int:
    import jpeg_ls
    import pydicom

    sys.path.insert(0, str(REPO / "platform"))
    from viewer import encoding

    total = 0
    for path in files:
        ds = pydicom.dcmread(path)
        layout = encoding.layout_of(ds)
        total += len(jpeg_ls.encode(encoding.stored_values(ds, ds.pixel_array, layout)))
    return total


# --- the run ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate-bps", type=float, default=1_000_000)
    parser.add_argument("--rtt-s", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=120.0, help="per measurement, seconds")
    parser.add_argument("--only", choices=("radiograph", "ct"), help="measure one of the two")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    children = Children()
    root = Path(tempfile.mkdtemp(prefix="joliba-viewer-bench-"))
    try:
        say(f"workdir {root}")
        platform = Platform(root, children).start()
        peer = start_peer(root, children)
        say("sending the radiograph and the CT series (direct, not through the link)")
        cr = platform.send([RADIOGRAPH], "Douleur tibia")
        ct = platform.send(CT_SERIES, "Traumatisme crânien")
        for pk in (cr, ct):
            platform.claim_when_queued(pk)
        peer_cr, peer_ct = peer_series(peer, [RADIOGRAPH]), peer_series(peer, CT_SERIES)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                context = signed_in_context(browser, platform)
                found = {pk: wait_renditions(platform, context, pk) for pk in (cr, ct)}
                context.close()
                say("renditions ready; measuring")
                results = {}
                for name, pk, files, peer_id in (
                    ("radiograph", cr, [RADIOGRAPH], peer_cr),
                    ("ct", ct, CT_SERIES, peer_ct),
                ):
                    if args.only and name != args.only:
                        continue
                    measured = measure_joliba(browser, platform, pk, found[pk], args)
                    measured["lossless_compressed_bytes"] = jpeg_ls_bytes(files)
                    measured["full_vs_jpeg_ls"] = round(
                        measured["full_fidelity_bytes"] / measured["lossless_compressed_bytes"], 4
                    )
                    measured["peer"] = measure_peer(browser, peer, peer_id, args)
                    results[name] = measured
                    say(f"{name}: {json.dumps(measured)}")
            finally:
                browser.close()
    finally:
        children.stop()
    if args.only:
        print(json.dumps(results))
        return 0
    radiograph = results["radiograph"]
    summary = {
        **radiograph,
        "ct": results["ct"],
        "link": {"rate_bps": args.rate_bps, "rtt_s": args.rtt_s, "cold_cache": True},
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        },
        "files": {"radiograph": RADIOGRAPH.name, "ct": f"{len(CT_SERIES)} slices of {CT_HEAD.name}"},
    }
    print(
        f"viewer_bytes: radiograph first image {radiograph['first_image_s']} s / "
        f"{radiograph['first_image_bytes']} B (peer {radiograph['peer']['first_image_s']} s / "
        f"{radiograph['peer']['first_image_bytes']} B), full {radiograph['full_fidelity_s']} s / "
        f"{radiograph['full_fidelity_bytes']} B = {radiograph['full_vs_jpeg_ls']} x JPEG-LS; "
        f"CT first image {results['ct']['first_image_s']} s "
        f"(peer {results['ct']['peer']['first_image_s']} s); "
        f"load {summary['machine']['loadavg_before'][0]}"
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
