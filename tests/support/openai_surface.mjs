// The OpenAI surface as openai-node (6.x) uses it, against a real platform with the scripted LLM.
//
// Usage: node openai_surface.mjs <gateway url> <embedding model id>
// Asserts in JS (node:assert) and prints "ok <check>" per check; any failure exits non-zero with
// the reason on stderr. The scripted LLM chooses tool calls from a [[tools_b64=...]] directive.
import assert from "node:assert/strict";
import OpenAI from "openai";

const [gateway, embeddingModel] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${gateway}/v1`, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
const script = (...turns) => `[[tools_b64=${Buffer.from(JSON.stringify(turns)).toString("base64")}]]`;
const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city.",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const twoCities = script(
  { calls: [{ name: "get_weather", arguments: { city: "Paris" } }, { name: "get_weather", arguments: { city: "Oslo" } }] },
  { text: "Weather: {{results}}" },
);
const ok = (name) => console.log(`ok ${name}`);
// The stream helper's final response has no output_text (the SDK adds it to created responses only).
const textOf = (response) =>
  response.output.filter((i) => i.type === "message").flatMap((i) => i.content).map((c) => c.text ?? "").join("");
const answer = (calls) => calls.map((c) => ({ role: "tool", tool_call_id: c.id, content: `sunny in ${JSON.parse(c.function.arguments).city}` }));

// -- chat completions: parallel tool calls, not streamed, then the round trip ---------------------
for (const model of ["reasoning", "switchboard"]) {
  const question = [{ role: "user", content: `Weather in Paris and Oslo? ${twoCities}` }];
  const asked = await client.chat.completions.create({ model, messages: question, tools: [weather] });
  const choice = asked.choices[0];
  assert.equal(choice.finish_reason, "tool_calls");
  assert.equal(choice.message.content, null);
  assert.deepEqual(
    choice.message.tool_calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]),
    [["call_0_0", "get_weather", { city: "Paris" }], ["call_0_1", "get_weather", { city: "Oslo" }]],
  );
  const done = await client.chat.completions.create({
    model,
    messages: [...question, choice.message, ...answer(choice.message.tool_calls)],
    tools: [weather],
  });
  assert.equal(done.choices[0].message.content, "Weather: sunny in Paris | sunny in Oslo");
  ok(`chat tools ${model}`);

  // Streamed: raw chunks carry index, id and name first, then argument fragments...
  const chunks = [];
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: `Weather? [[delay_ms=3]] ${twoCities}` }],
    tools: [weather],
    stream: true,
  });
  for await (const chunk of stream) chunks.push(chunk);
  const fragments = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.delta.tool_calls ?? []));
  const heads = fragments.filter((f) => f.id);
  assert.deepEqual(heads.map((f) => [f.index, f.id, f.function.name]), [[0, "call_0_0", "get_weather"], [1, "call_0_1", "get_weather"]]);
  assert.ok(fragments.length > heads.length, "arguments come in fragments");
  assert.equal(chunks.at(-1).choices[0].finish_reason, "tool_calls");
  // ...and the SDK's stream helper assembles them.
  const runner = client.chat.completions.stream({
    model,
    messages: [{ role: "user", content: `Weather? [[delay_ms=2]] ${twoCities}` }],
    tools: [weather],
  });
  const final = await runner.finalChatCompletion();
  assert.deepEqual(
    final.choices[0].message.tool_calls.map((c) => JSON.parse(c.function.arguments).city),
    ["Paris", "Oslo"],
  );
  ok(`chat tools streamed ${model}`);
}

// -- structured output and logprobs --------------------------------------------------------------
const shaped = await client.chat.completions.create({
  model: "switchboard",
  messages: [{ role: "user", content: "a verdict" }],
  response_format: {
    type: "json_schema",
    json_schema: { name: "verdict", strict: true, schema: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] } },
  },
});
assert.deepEqual(JSON.parse(shaped.choices[0].message.content), { ok: true });
const scored = await client.chat.completions.create({
  model: "reasoning", messages: [{ role: "user", content: "count" }], logprobs: true, top_logprobs: 1,
});
assert.equal(scored.choices[0].logprobs.content.map((t) => t.token).join(""), scored.choices[0].message.content);
ok("structured output and logprobs");

// -- errors --------------------------------------------------------------------------------------
await assert.rejects(
  client.chat.completions.create({ model: "reasoning", messages: [{ role: "user", content: "x" }], response_format: { type: "xml" } }),
  (err) => err instanceof OpenAI.BadRequestError && err.param === "response_format.type",
);
ok("errors");

// -- the Responses API ---------------------------------------------------------------------------
const first = await client.responses.create({ model: "switchboard", input: "my name is Ada", instructions: "Be brief." });
assert.equal(first.status, "completed");
assert.equal(first.output_text, "Echo: my name is Ada");
const second = await client.responses.create({ model: "switchboard", input: "and yours?", previous_response_id: first.id });
assert.equal(second.output_text, "Echo: and yours?");
assert.equal(second.previous_response_id, first.id);
assert.equal((await client.responses.retrieve(first.id)).output_text, "Echo: my name is Ada");
ok("responses two turns");

const events = [];
for await (const event of await client.responses.create({ model: "reasoning", input: "one two [[delay_ms=2]]", stream: true })) {
  events.push(event);
}
assert.equal(events[0].type, "response.created");
assert.equal(events.at(-1).type, "response.completed");
assert.equal(events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""), "Echo: one two");
const helper = client.responses.stream({ model: "reasoning", input: "helper [[delay_ms=1]]" });
assert.equal(textOf(await helper.finalResponse()), "Echo: helper");
ok("responses streamed");

const tool = { type: "function", name: "get_weather", parameters: weather.function.parameters, strict: true };
const question = `Weather? ${script({ calls: [{ name: "get_weather", arguments: { city: "Lima" } }] }, { text: "It is {{results}}" })}`;
const calling = client.responses.stream({ model: "switchboard", input: question, tools: [tool] });
const asked = await calling.finalResponse();
const call = asked.output.find((item) => item.type === "function_call");
assert.deepEqual([call.name, JSON.parse(call.arguments)], ["get_weather", { city: "Lima" }]);
const replied = await client.responses.create({
  model: "switchboard",
  previous_response_id: asked.id,
  input: [{ type: "function_call_output", call_id: call.call_id, output: "warm" }],
  tools: [tool],
});
assert.equal(replied.output_text, "It is warm");
await client.responses.delete(first.id);
await assert.rejects(client.responses.retrieve(first.id), (err) => err instanceof OpenAI.NotFoundError);
ok("responses function tool");

// -- embeddings ----------------------------------------------------------------------------------
const asBase64 = await client.embeddings.create({ model: embeddingModel, input: ["tides", "bread"] }); // base64 by default
const asFloat = await client.embeddings.create({ model: embeddingModel, input: ["tides", "bread"], encoding_format: "float" });
assert.equal(asBase64.data.length, 2);
assert.equal(asBase64.data[0].embedding.length, 384);
for (let i = 0; i < 2; i++) {
  asBase64.data[i].embedding.forEach((v, k) => assert.ok(Math.abs(v - asFloat.data[i].embedding[k]) < 1e-6));
}
assert.ok(asBase64.usage.prompt_tokens > 0);
await assert.rejects(
  client.embeddings.create({ model: embeddingModel, input: "x", dimensions: 64 }),
  (err) => err instanceof OpenAI.BadRequestError && err.param === "dimensions",
);
ok("embeddings");
