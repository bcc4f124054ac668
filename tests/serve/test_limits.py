"""Limits, cancellation and shutdown of `unmask serve`: a client that goes
away cancels its request (streamed or not), SIGTERM drains what was admitted
and refuses the rest, and every limit answers with its status and an OpenAI
error object: 413 (body), 429 (requests in flight, queue), 504 (timeout),
400 (canvas rows)."""
import json
import signal
import socket
import threading
import time

import openai
import pytest
import requests

PROMPT = "In the beginning"
# A request of the tiny model that takes seconds (480 steps over 483 positions).
LONG = {"model": "tiny-llada", "prompt": PROMPT, "max_tokens": 480, "block_length": 480, "steps": 480,
        "ignore_eos": True}


def raw_post(server, body):
    """A POST on a socket of its own, left open; the caller closes it."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    return s


def running(n):
    return lambda m: m["unmask_running_jobs"] == n


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_goes_away_cancels_its_request(serve, stream):
    s = serve()
    before = s.metrics()
    sock = raw_post(s, dict(LONG, stream=stream))
    assert s.wait_for(running(1)), "the request never started"
    if stream:
        assert sock.recv(1024)  # the stream has begun
    time.sleep(0.2)
    sock.close()
    gone = time.monotonic()
    after = s.wait_for(running(0), timeout=3.0)
    assert after is not None, "the request kept running after its client left"
    print(f"cancelled {time.monotonic() - gone:.3f} s after the client left")
    # It was cut short: far fewer steps than its 480.
    assert after["unmask_model_calls_total"] - before["unmask_model_calls_total"] < 400
    assert after["unmask_finished_jobs_total"] == before["unmask_finished_jobs_total"] + 1
    # And the server goes on serving.
    r = requests.post(s.v1 + "/completions", json={"prompt": PROMPT, "max_tokens": 8}, timeout=30)
    assert r.status_code == 200


def test_sigterm_drains_then_exits(serve):
    s = serve("--drain-timeout", "60")
    result = {}

    def long_request():
        body = dict(LONG, max_tokens=160, block_length=160, steps=160)
        result["response"] = requests.post(s.v1 + "/completions", json=body, timeout=120)

    t = threading.Thread(target=long_request)
    t.start()
    assert s.wait_for(running(1))
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    assert requests.get(s.url + "/health", timeout=10).status_code == 503
    refused = requests.post(s.v1 + "/completions", json={"prompt": PROMPT, "max_tokens": 8}, timeout=10)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "shutting_down"
    t.join(120)
    r = result["response"]
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] == "length"
    assert r.json()["usage"]["completion_tokens"] == 160
    assert s.proc.wait(30) == 0


def test_drain_timeout_cancels_what_is_left(serve):
    s = serve("--drain-timeout", "0.3")
    sock = raw_post(s, LONG)
    assert s.wait_for(running(1))
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(10) == 0
    assert time.monotonic() - t0 < 5
    sock.close()


def test_request_timeout(serve):
    s = serve("--request-timeout", "0.3")
    c = openai.OpenAI(base_url=s.v1, api_key="none", max_retries=0)
    with pytest.raises(openai.APIStatusError) as e:
        c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=480,
                             extra_body={"block_length": 480, "steps": 480, "ignore_eos": True})
    assert e.value.status_code == 504
    # Streamed: an error event, then the end of the stream.
    r = requests.post(s.v1 + "/completions", json=dict(LONG, stream=True), timeout=30)
    events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "timeout"
    assert s.wait_for(running(0), timeout=3.0)


def test_body_limit(serve):
    s = serve("--max-body-bytes", "4096")
    c = openai.OpenAI(base_url=s.v1, api_key="none", max_retries=0)
    with pytest.raises(openai.APIStatusError) as e:
        c.completions.create(model="tiny-llada", prompt="word " * 2000, max_tokens=8)
    assert e.value.status_code == 413
    assert c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=8).choices[0].text is not None


def test_prompt_and_canvas_limits(serve):
    s = serve("--max-prompt-tokens", "8", "--max-canvas-rows", "40", "--max-tokens", "64")
    c = openai.OpenAI(base_url=s.v1, api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        c.completions.create(model="tiny-llada", prompt=list(range(5, 14)), max_tokens=8)
    assert e.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as e:
        c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=65)
    assert e.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as e:  # 3 + 64 positions > 40 rows
        c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=64)
    assert "max_canvas_rows" in e.value.message
    assert c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=32).choices[0].text is not None


def test_too_many_requests(serve):
    s = serve("--max-concurrent", "1")
    sock = raw_post(s, LONG)
    assert s.wait_for(running(1))
    c = openai.OpenAI(base_url=s.v1, api_key="none", max_retries=0)
    with pytest.raises(openai.RateLimitError) as e:
        c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=8)
    assert e.value.body["code"] == "too_many_requests"
    sock.close()
    assert s.wait_for(lambda m: m["unmask_in_flight_requests"] == 0, timeout=3.0)
    assert c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=8).choices[0].text is not None


def test_full_queue(serve):
    s = serve("--max-running", "1", "--max-queued", "1")
    first = raw_post(s, LONG)
    assert s.wait_for(running(1))
    second = raw_post(s, LONG)
    assert s.wait_for(lambda m: m["unmask_queue_depth"] == 1)
    c = openai.OpenAI(base_url=s.v1, api_key="none", max_retries=0)
    with pytest.raises(openai.RateLimitError) as e:
        c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=8)
    assert e.value.body["code"] == "queue_full"
    first.close()
    second.close()
    assert s.wait_for(lambda m: m["unmask_running_jobs"] == 0 and m["unmask_queue_depth"] == 0, timeout=3.0)


def test_sigterm_at_once(serve):
    """A signal as soon as the address is printed still drains and exits 0."""
    s = serve()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(10) == 0


def test_refusals_close_their_connection(serve):
    """429 and 503 end the connection, so a refused client does not hold a server thread in keep-alive."""
    s = serve("--max-concurrent", "1")
    sock = raw_post(s, LONG)
    assert s.wait_for(running(1))
    with requests.Session() as session:
        r = session.post(s.v1 + "/completions", json={"prompt": PROMPT, "max_tokens": 8}, timeout=10)
        assert r.status_code == 429
        assert r.headers.get("Connection", "").lower() == "close"
    sock.close()
