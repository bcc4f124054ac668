# Writes docs/openapi.json, the description of `unmask serve`'s API (served at
# /openapi.json and built into the program; schemathesis tests the server
# against it). Rerun after changing the API: python3 tools/make_openapi.py
import json
import os
err = {"$ref": "#/components/schemas/Error"}
def errors(*codes):
    d = {}
    text = {400: "The request is malformed or a field is out of range", 401: "Missing or wrong API key",
            404: "No such model or endpoint", 413: "The body is larger than --max-body-bytes",
            429: "Too many requests in flight, or the queue is full", 500: "Decoding failed",
            503: "The server is shutting down", 504: "The request took longer than --request-timeout"}
    for c in codes:
        d[str(c)] = {"description": text[c], "content": {"application/json": {"schema": err}}}
    return d
num = lambda lo, hi, desc: {"type": "number", "minimum": lo, "maximum": hi, "description": desc}
integer = lambda lo, hi, desc: {"type": "integer", "minimum": lo, "maximum": hi, "description": desc}
ids = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}
common = {
  "model": {"type": "string", "description": "The served model's id (GET /v1/models); optional"},
  "temperature": num(0, 2, "Sampling temperature; 0 is greedy (default: --temperature, 0)"),
  "top_p": {"type": "number", "minimum": 0, "maximum": 1, "description": "Nucleus sampling (0: only the most likely token, as temperature 0)"},
  "n": integer(1, 16, "Choices per prompt (each keyed by its index, so equal requests decode equally)"),
  "stream": {"type": "boolean", "description": "Server-sent events: one chunk per step that added text, then data: [DONE]"},
  "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}, "description": "With stream: a last chunk with usage"},
  "stop": {"oneOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 4}],
           "description": "Stop strings (left out of the text)"},
  "seed": {"type": "integer", "minimum": 0, "description": "Seed of the draws (default: a fresh one)"},
  "presence_penalty": {"type": "number", "enum": [0], "description": "Only 0"},
  "frequency_penalty": {"type": "number", "enum": [0], "description": "Only 0"},
  "user": {"type": "string"},
  "top_k": integer(0, 1 << 20, "Extension: top-k sampling (0: off)"),
  "ignore_eos": {"type": "boolean", "description": "Extension: keep decoding past the end-of-sequence token"},
  "steps": integer(1, 1024, "Extension: denoising steps over the whole generation, a multiple of the blocks (default: max_tokens, one token per step)"),
  "block_length": integer(1, 1024, "Extension: semi-autoregressive block length; divides max_tokens (default: --block-length when it divides, else max_tokens)"),
  "policy": {"type": "string", "enum": ["low-confidence", "margin", "entropy", "random", "threshold", "factor", "eb"],
             "description": "Extension: which masked positions a step commits (confidence metric and selection rule)"},
  "threshold": num(0, 1, "Extension: confidence threshold of policy threshold (Fast-dLLM)"),
  "factor": num(0.000001, 100, "Extension: factor of policy factor (Fast-dLLM)"),
  "gamma": num(0.000001, 100, "Extension: entropy bound of policy eb"),
  "schedule": {"type": "string", "enum": ["llada", "dream", "llama_cpp"], "description": "Extension: how many positions each step commits"},
  "cfg": num(0, 100, "Extension: classifier-free guidance scale (0: none; a guided request feeds its unconditional copy too)"),
  "cache": {"type": "string", "enum": ["none"], "description": "Extension: the K/V cache mode (the scheduler runs without one)"},
  "canvas_events": {"type": "boolean", "description": "Extension, with stream: also send `event: canvas` events, the positions each step committed"},
}
completion_req = {"type": "object", "required": ["prompt"], "properties": dict(
  prompt={"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 16}, ids,
                    {"type": "array", "items": ids, "minItems": 1, "maxItems": 16}],
          "description": "Text, texts, token ids or lists of token ids"},
  max_tokens=integer(1, 1024, "Generated positions (the canvas; default: --gen-length)"),
  echo={"type": "boolean", "enum": [False]}, best_of={"type": "integer", "enum": [1]},
  logprobs={"type": "integer", "enum": [0], "nullable": True, "description": "Not supported"},
  **common)}
part = {"type": "object", "required": ["type", "text"], "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}}}
message = {"type": "object", "required": ["role", "content"], "properties": {
  "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
  "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": part}]}, "name": {"type": "string"}}}
chat_req = {"type": "object", "required": ["messages"], "properties": dict(
  messages={"type": "array", "items": message, "minItems": 1, "maxItems": 64},
  max_tokens=integer(1, 1024, "Generated positions (default: --gen-length)"),
  max_completion_tokens=integer(1, 1024, "As max_tokens"),
  logprobs={"type": "boolean", "enum": [False]}, **common)}
usage = {"type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens"], "properties": {
  "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"},
  "forwards": {"type": "integer", "description": "Extension: model calls the choices took part in"}}}
finish = {"type": "string", "enum": ["stop", "length"]}
completion = {"type": "object", "required": ["id", "object", "created", "model", "choices", "usage"], "properties": {
  "id": {"type": "string"}, "object": {"type": "string", "enum": ["text_completion"]}, "created": {"type": "integer"},
  "model": {"type": "string"}, "usage": usage,
  "choices": {"type": "array", "items": {"type": "object", "required": ["index", "text", "finish_reason"], "properties": {
    "index": {"type": "integer"}, "text": {"type": "string"}, "finish_reason": finish, "logprobs": {"nullable": True},
    "forwards": {"type": "integer"}}}}}}
chat = {"type": "object", "required": ["id", "object", "created", "model", "choices", "usage"], "properties": {
  "id": {"type": "string"}, "object": {"type": "string", "enum": ["chat.completion"]}, "created": {"type": "integer"},
  "model": {"type": "string"}, "usage": usage,
  "choices": {"type": "array", "items": {"type": "object", "required": ["index", "message", "finish_reason"], "properties": {
    "index": {"type": "integer"}, "finish_reason": finish, "logprobs": {"nullable": True}, "forwards": {"type": "integer"},
    "message": {"type": "object", "required": ["role", "content"], "properties": {
      "role": {"type": "string", "enum": ["assistant"]}, "content": {"type": "string"}}}}}}}}
model = {"type": "object", "required": ["id", "object", "created", "owned_by"], "properties": {
  "id": {"type": "string"}, "object": {"type": "string", "enum": ["model"]}, "created": {"type": "integer"}, "owned_by": {"type": "string"}}}
# A server-sent event as a client parses it (schemathesis checks each one against this).
sse = {"text/event-stream": {"schema": {"type": "object", "required": ["data"],
       "description": "One event: data: {a chunk} (event 'message'), 'canvas' events with canvas_events, then data: [DONE]",
       "properties": {"event": {"type": "string", "enum": ["message", "canvas"]}, "data": {"type": "string"},
                      "id": {"type": "string"}, "retry": {"type": "integer"}}}}}
gen_errors = errors(400, 401, 404, 413, 429, 500, 503, 504)
doc = {
 "openapi": "3.0.3",
 "info": {"title": "unmask serve", "version": "1", "description":
   "The OpenAI-compatible API of `unmask serve` (docs/serving.md), with the diffusion settings as extensions."},
 "paths": {
  "/v1/completions": {"post": {"operationId": "createCompletion", "summary": "Complete a prompt",
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CompletionRequest"}}}},
     "responses": {"200": {"description": "The completion, or with stream a stream of chunks",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Completion"}}, **sse}}, **gen_errors}}},
  "/v1/chat/completions": {"post": {"operationId": "createChatCompletion", "summary": "Reply to a conversation (the model's chat template)",
     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}}},
     "responses": {"200": {"description": "The reply, or with stream a stream of chunks",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatCompletion"}}, **sse}}, **gen_errors}}},
  "/v1/models": {"get": {"operationId": "listModels", "summary": "The model served", "responses": {
     "200": {"description": "One model", "content": {"application/json": {"schema": {"type": "object", "required": ["object", "data"],
        "properties": {"object": {"type": "string", "enum": ["list"]}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}}}}},
     **errors(401)}}},
  "/v1/models/{model}": {"get": {"operationId": "retrieveModel", "summary": "The model served, by id",
     "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
     "responses": {"200": {"description": "The model", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Model"}}}},
                   **errors(400, 401, 404)}}},
  "/health": {"get": {"operationId": "health", "summary": "Liveness and draining", "responses": {
     "200": {"description": "Serving", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
     "503": {"description": "Draining (SIGTERM)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
  "/metrics": {"get": {"operationId": "metrics", "summary": "Prometheus text exposition", "responses": {
     "200": {"description": "Counters, gauges and histograms", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
 },
 "components": {"schemas": {
   "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
      "message": {"type": "string"}, "type": {"type": "string"}, "param": {"type": "string", "nullable": True}, "code": {"type": "string", "nullable": True}}}}},
   "CompletionRequest": completion_req, "ChatCompletionRequest": chat_req, "Completion": completion, "ChatCompletion": chat,
   "Model": model, "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["ok", "draining"]}}}}},
 "security": [{}, {"bearer": []}],
}
doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "description": "--api-key (only /v1/ paths)"}}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "openapi.json")
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
