"""Africa's Talking through its official client, against a stand-in for its HTTP API (a paid
provider: the one place the tests replace a real service)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from alerts.backends import GatewayDown, Rejected
from alerts.backends.africastalking import AfricasTalkingBackend
from tests.kannel import free_port


class FakeAfricasTalking(BaseHTTPRequestHandler):
    """POST /version1/messaging as the provider documents it: form fields in, JSON out."""

    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        form["apiKey"] = self.headers.get("apiKey", "")
        FakeAfricasTalking.received.append({"path": self.path, **form})
        if form["apiKey"] != "at-key":
            self._answer(401, "The supplied authentication is invalid")
            return
        number = form["to"]
        ok = number.startswith("+223")
        status = (
            {"statusCode": 101, "status": "Success"}
            if ok
            else {"statusCode": 403, "status": "InvalidPhoneNumber"}
        )
        recipient = {"number": number, "cost": "XOF 20.0000", "messageId": "ATXid_4f1c0d", **status}
        self._answer(
            201, json.dumps({"SMSMessageData": {"Message": "Sent to 1/1", "Recipients": [recipient]}})
        )

    def _answer(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def provider(settings):
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeAfricasTalking)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FakeAfricasTalking.received = []
    settings.AFRICASTALKING_API_URL = f"http://127.0.0.1:{port}"
    settings.AFRICASTALKING_USERNAME, settings.AFRICASTALKING_API_KEY = "joliba", "at-key"
    yield FakeAfricasTalking.received
    server.shutdown()


def test_it_sends_through_the_official_client_and_keeps_the_message_id(provider):
    handed = AfricasTalkingBackend().send(
        to="+22370000001", text="CRITIQUE J7F3", encoding="gsm7", reference="a1"
    )
    assert handed.gateway_id == "ATXid_4f1c0d"
    [call] = provider
    assert call["path"] == "/version1/messaging" and call["to"] == "+22370000001"
    assert call["message"] == "CRITIQUE J7F3" and call["username"] == "joliba"


def test_a_refused_number_is_rejected_and_a_bad_key_is_an_outage(provider, settings):
    with pytest.raises(Rejected):
        AfricasTalkingBackend().send(to="+33600000000", text="x", encoding="gsm7", reference="a2")
    with pytest.raises(Rejected):  # the client itself refuses what is not a number
        AfricasTalkingBackend().send(to="70000000", text="x", encoding="gsm7", reference="a3")
    settings.AFRICASTALKING_API_KEY = "wrong"
    with pytest.raises(GatewayDown):
        AfricasTalkingBackend().send(to="+22370000001", text="x", encoding="gsm7", reference="a4")


def test_the_provider_unreachable_is_an_outage(settings):
    settings.AFRICASTALKING_API_URL = f"http://127.0.0.1:{free_port()}"
    settings.AFRICASTALKING_API_KEY = "at-key"
    with pytest.raises(GatewayDown):
        AfricasTalkingBackend().send(to="+22370000001", text="x", encoding="gsm7", reference="a5")
