"""Headless Chromium (Debian's `chromium`) driven over the Chrome DevTools
protocol, for screenshots of the lab's web UIs.

Why the pipe: `--remote-debugging-pipe` speaks CDP on file descriptors 3
(commands in) and 4 (answers and events out), JSON messages ended by NUL.
No port is opened, no websocket library is needed: the standard library is
the client (what Puppeteer and Playwright do under the hood).

Why an SPKI pin and not the system store: Chromium trusts only its NSS
store, which the lab CA is not in. The caller first verifies the server's
certificate against the lab CA with Python's ssl, then hands Chromium the
SHA-256 of that very certificate's public key
(`--ignore-certificate-errors-spki-list`, honoured with a user data dir):
Chromium accepts that key and nothing else it could not verify.

The caller must have checked the route to every address Chromium will
reach (the lab fixture's safety check): Chromium gets no proxy and only the
URLs it is told.
"""

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import zlib

from lemplab import wait_for


def spki_sha256(address, port, ca_file, server_hostname=None):
    """base64(SHA-256(SubjectPublicKeyInfo)) of the certificate `address:port`
    presents, after verifying it against `ca_file` (else ssl.SSLError)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = server_hostname is not None
    with socket.create_connection((address, port), timeout=10) as sock, \
            context.wrap_socket(sock, server_hostname=server_hostname or address) as tls:
        der = tls.getpeercert(binary_form=True)
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class CDPError(Exception):
    pass


class Chromium:
    """One headless Chromium with one page, driven over the CDP pipe.

        with Chromium(spki=[pin], window=(1600, 1000)) as browser:
            browser.set_cookie("zbx_session", value, "10.77.0.41")
            browser.navigate("https://10.77.0.41/zabbix.php?action=dashboard.view")
            browser.wait_for_js("document.readyState === 'complete'", 60, "the page")
            browser.screenshot(path)
    """

    def __init__(self, spki=(), window=(1600, 1000)):
        self.spki, self.window = list(spki), window
        self._id = 0
        self._buffer = b""
        self.session = None

    def __enter__(self):
        self.profile = tempfile.mkdtemp(prefix="lemp-ha-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Debian's package (TEST_HOST_PACKAGES in tools/lab/prereqs.sh)
        binary = shutil.which("chromium")
        if not binary:
            raise CDPError("chromium is not installed: apt-get install chromium (./lab test installs it)")
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--disable-background-networking", "--no-proxy-server",
                "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-pipe",
                f"--user-data-dir={self.profile}", f"--window-size={self.window[0]},{self.window[1]}"]
        if self.spki:
            args.append("--ignore-certificate-errors-spki-list=" + ",".join(self.spki))
        args.append("about:blank")

        def fds():
            # the child: commands on fd 3, answers on fd 4. Copies first, so
            # that placing one cannot overwrite the other; only 3 and 4 are
            # inheritable (Python's own fds are not), so close_fds=False
            # passes nothing else.
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        # stderr to a file: a pipe nobody reads could fill and stall Chromium
        self._stderr = open(os.path.join(self.profile, "chromium.stderr"), "w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(args, preexec_fn=fds, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        os.close(to_browser_r)
        os.close(from_browser_w)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")
        self.call("Network.enable")
        return self

    def __exit__(self, *exc):
        try:
            if self.proc.poll() is None:
                try:
                    self.call("Browser.close", browser_level=True, timeout=10)
                except (CDPError, OSError):
                    pass
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)
            self._stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)
        return False

    # -- the protocol ----------------------------------------------------------
    def _read_message(self, deadline):
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("no answer from Chromium in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                self._stderr.seek(0)
                err = self._stderr.read().decode(errors="replace")[-2000:]
                raise CDPError(f"Chromium closed the pipe (exit {self.proc.poll()}): {err}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, browser_level=False, timeout=60, **params):
        """Send one command (to the page's session unless browser_level) and
        return its result; events met on the way are dropped."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session and not browser_level and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise CDPError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    # -- what a test does ----------------------------------------------------------
    def set_cookie(self, name, value, domain, path="/", secure=True):
        ok = self.call("Network.setCookie", name=name, value=value, domain=domain, path=path,
                       secure=secure, httpOnly=True)
        if not ok.get("success", True):
            raise CDPError(f"Chromium refused the cookie {name} for {domain}")

    def navigate(self, url):
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise CDPError(f"{url}: {result['errorText']}")

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for_js(self, expression, timeout, what):
        return wait_for(lambda: self.evaluate(expression), timeout, what, interval=0.5)

    def screenshot(self, path):
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        with open(path, "wb") as out:
            out.write(data)
        return data


# -- PNG: how much is in the picture (no imaging library) ------------------------------

def png_colours(data, limit=100000):
    """The number of distinct colours of an 8-bit RGB(A) PNG (counting stops
    at `limit`). Raises ValueError for other PNG kinds."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type, _c, _f, interlace = struct.unpack(">IIBBBBB", chunk)
            if depth != 8 or colour_type not in (2, 6) or interlace:
                raise ValueError(f"PNG kind not handled: depth {depth}, colour type {colour_type}, "
                                 f"interlace {interlace}")
            bpp = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    colours = set()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                upleft = previous[i - bpp] if i >= bpp else 0
                p = left + up - upleft
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else upleft)) & 0xFF
        if y % 4 == 0:  # every 4th row is plenty to count colours
            colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 2))
            if len(colours) >= limit:
                break
        previous = line
    return len(colours)
