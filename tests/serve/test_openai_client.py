"""The official openai client against `unmask serve`: completions and chat
completions, whole and streamed, give the text `unmask generate` and
`unmask chat` make of the same prompt and settings; requests served together
give what each gives alone; the errors are the client's typed exceptions."""
import concurrent.futures
import threading

import openai
import pytest
import requests

from conftest import generate

PROMPT = "In the beginning"


def client(server, **kw):
    return openai.OpenAI(base_url=server.v1, api_key=kw.pop("api_key", "none"), max_retries=0, **kw)


def test_models(tiny):
    models = client(tiny).models.list()
    assert [m.id for m in models.data] == ["tiny-llada"]
    assert client(tiny).models.retrieve("tiny-llada").owned_by == "unmask"
    with pytest.raises(openai.NotFoundError):
        client(tiny).models.retrieve("gpt-4")


def test_completion_whole_and_streamed(tiny):
    expected = generate("-p", PROMPT, "--gen-length", "32", "--block-length", "32", "--steps", "16")
    assert expected
    c = client(tiny)
    r = c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=32, extra_body={"steps": 16})
    assert r.object == "text_completion"
    assert r.choices[0].text == expected
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens == 3 and r.usage.completion_tokens > 0

    chunks = list(c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=32, stream=True,
                                       stream_options={"include_usage": True}, extra_body={"steps": 16}))
    text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert text == expected
    finishes = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert finishes == [r.choices[0].finish_reason]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == r.usage.completion_tokens
    assert len({ch.id for ch in chunks}) == 1


def test_stop_strings_and_several_choices(tiny):
    c = client(tiny)
    whole = c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=32).choices[0].text
    words = whole.split()
    assert len(words) > 3, whole
    stop = " " + words[2]
    cut = whole[:whole.index(stop)]
    r = c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=32, stop=[stop])
    assert r.choices[0].text == cut and r.choices[0].finish_reason == "stop"
    streamed = "".join(ch.choices[0].text for ch in c.completions.create(
        model="tiny-llada", prompt=PROMPT, max_tokens=32, stop=stop, stream=True))
    assert streamed == cut
    # n choices of two prompts, sampled with a seed: reproducible, in order, and the same as alone.
    several = c.completions.create(model="tiny-llada", prompt=[PROMPT, "And God said"], n=2, max_tokens=16,
                                   temperature=0.9, seed=11)
    assert [ch.index for ch in several.choices] == [0, 1, 2, 3]
    again = c.completions.create(model="tiny-llada", prompt=[PROMPT, "And God said"], n=2, max_tokens=16,
                                 temperature=0.9, seed=11)
    assert [ch.text for ch in several.choices] == [ch.text for ch in again.choices]


def test_chat_whole_and_streamed(tiny):
    c = client(tiny)
    messages = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Who made the light?"}]
    r = c.chat.completions.create(model="tiny-llada", messages=messages, max_tokens=32, seed=3)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    content = r.choices[0].message.content
    assert isinstance(content, str)
    chunks = list(c.chat.completions.create(model="tiny-llada", messages=messages, max_tokens=32, seed=3, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == content
    assert chunks[-1].choices[0].finish_reason == r.choices[0].finish_reason
    # The same turn through `unmask chat`'s rendering of the template: the same reply.
    expected = generate("--chat", "--system", "You answer briefly.", "-p", "Who made the light?",
                        "--gen-length", "32", "--block-length", "32", "--steps", "32")
    assert content == expected


def test_concurrent_requests_equal_the_same_requests_one_at_a_time(tiny):
    """Requests with their own lengths, steps, temperatures and seeds, served
    together (joining and leaving one batch between steps), each give exactly
    what they give alone."""
    c = client(tiny)
    prompts = ["In the beginning", "And God said", "The earth was", "Let there be", "And the evening",
               "He called the", "Blessed are", "In my father's house"]
    jobs = []
    for i, p in enumerate(prompts):
        length = [16, 32, 48, 64][i % 4]
        jobs.append(dict(model="tiny-llada", prompt=p, max_tokens=length, temperature=[0.0, 0.7][i % 2],
                         seed=100 + i, extra_body={"steps": length // [1, 2][i % 2], "block_length": 16}))
    alone = [c.completions.create(**j).choices[0].text for j in jobs]
    before = tiny.metrics()
    start = threading.Barrier(len(jobs))

    def one(j):
        start.wait()
        return client(tiny).completions.create(**j).choices[0].text

    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        together = list(pool.map(one, jobs))
    after = tiny.metrics()
    assert together == alone
    # ... and they did run together: more sequences than forward passes.
    calls = after["unmask_model_calls_total"] - before["unmask_model_calls_total"]
    sequences = after["unmask_sequence_forwards_total"] - before["unmask_sequence_forwards_total"]
    assert sequences > 1.5 * calls, (sequences, calls)


def test_errors_are_typed(tiny):
    c = client(tiny)
    with pytest.raises(openai.BadRequestError) as e:
        c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=0)
    assert e.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as e:
        c.completions.create(model="tiny-llada", prompt=PROMPT, max_tokens=32, extra_body={"block_length": 5})
    assert e.value.body["param"] == "block_length"
    with pytest.raises(openai.NotFoundError):
        c.completions.create(model="gpt-4", prompt=PROMPT)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="tiny-llada", messages=[{"role": "robot", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as e:
        c.completions.create(model="tiny-llada", prompt=PROMPT, logit_bias={"5": 3})
    assert e.value.body["code"] == "unsupported"
    # A body that is not JSON, straight through HTTP.
    r = requests.post(tiny.v1 + "/completions", data="{", headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"


def test_api_key(serve):
    s = serve("--api-key", "s3cret-key", "--gen-length", "8", "--block-length", "8")
    with pytest.raises(openai.AuthenticationError):
        client(s, api_key="wrong").completions.create(model="tiny-llada", prompt=PROMPT)
    with pytest.raises(openai.AuthenticationError):
        client(s, api_key="s3cret-ke").models.list()
    assert client(s, api_key="s3cret-key").completions.create(model="tiny-llada", prompt=PROMPT).choices[0].text
    assert requests.get(s.url + "/health", timeout=10).status_code == 200
