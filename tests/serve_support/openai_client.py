"""Drives `aiec serve` through the official `openai` package (run by tests/serve_openai.rs).

argv[1] is a JSON plan: {"base_url", "calls": [{"endpoint", "file", "model",
"response_format", "timestamp_granularities"?, "stream"?}]}. Prints one JSON object:
{"models": [ids], "results": [...]} where each result is the client's parsed answer:
{"str": ...} for text/srt/vtt, the model's fields for json/verbose_json, or
{"deltas": [...], "done": ...} for a stream.
"""

import json
import sys

import openai

plan = json.loads(sys.argv[1])
client = openai.OpenAI(base_url=plan["base_url"], api_key="not-needed", max_retries=0)

out = {"openai_version": openai.__version__,
       "models": [m.id for m in client.models.list()], "results": []}
for call in plan["calls"]:
    api = getattr(client.audio, call["endpoint"])
    kwargs = {"model": call["model"], "response_format": call["response_format"]}
    if call.get("timestamp_granularities"):
        kwargs["timestamp_granularities"] = call["timestamp_granularities"]
    with open(call["file"], "rb") as f:
        if call.get("stream"):
            deltas, done = [], None
            for event in api.create(file=f, stream=True, **kwargs):
                if event.type == "transcript.text.delta":
                    deltas.append(event.delta)
                elif event.type == "transcript.text.done":
                    done = event.text
            out["results"].append({"deltas": deltas, "done": done})
            continue
        result = api.create(file=f, **kwargs)
    if isinstance(result, str):
        out["results"].append({"str": result})
    else:
        out["results"].append(result.model_dump())
print(json.dumps(out))
