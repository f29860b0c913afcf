// The generated TypeScript client against the real services (node --test).
// tests/e2e/test_node_client.py starts the platform and runs this with the services'
// addresses in RAGCHAT_{RETRIEVAL,GENERATION,INGEST,MEMORY}_TARGET; without them it skips.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { createClient } from "../src/client.js";
import { Health, HealthCheckResponse_ServingStatus as Serving }
  from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { GenerationService } from "../gen/ragchat/generation/v1/generation_pb.js";
import { IngestService, JobStatus } from "../gen/ragchat/ingest/v1/ingest_pb.js";
import { RetrievalService, SearchMode } from "../gen/ragchat/retrieval/v1/retrieval_pb.js";

const targets = {
  retrieval: process.env.RAGCHAT_RETRIEVAL_TARGET,
  generation: process.env.RAGCHAT_GENERATION_TARGET,
  ingest: process.env.RAGCHAT_INGEST_TARGET,
  memory: process.env.RAGCHAT_MEMORY_TARGET,
};
const skip = Object.values(targets).some((t) => !t) && "no RAGCHAT_*_TARGET: platform not running";
// Every call names its tenant; the gateway's keyless tenant is "default".
const tenant = process.env.RAGCHAT_TENANT ?? "default";
const FACT = "The Zorblatt lighthouse keeper feeds the harbour seals every Tuesday at dawn.";

async function waitIndexed(ingest, jobId) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const job = await ingest.getJob({ jobId });
    if (job.status === JobStatus.INDEXED || job.status === JobStatus.FAILED) return job;
    assert.ok(Date.now() < deadline, `job ${jobId} still ${JobStatus[job.status]}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

describe("ragchat over gRPC from Node", { skip }, () => {
  const clients = [];
  let ingest, retrieval, generation;
  before(() => {
    ingest = createClient(IngestService, targets.ingest, { tenant });
    retrieval = createClient(RetrievalService, targets.retrieval, { tenant });
    generation = createClient(GenerationService, targets.generation,
      { deadlineMs: 120_000, tenant });
    clients.push(ingest, retrieval, generation);
  });
  after(() => clients.forEach((c) => c.close()));

  test("every service reports SERVING to the standard health check", async () => {
    for (const [name, address] of Object.entries(targets)) {
      const health = createClient(Health, address);
      clients.push(health);
      const answer = await health.check({ service: "" });
      assert.equal(answer.status, Serving.SERVING, `${name} at ${address}`);
    }
    const health = createClient(Health, targets.retrieval);
    clients.push(health);
    const answer = await health.check({ service: RetrievalService.typeName });
    assert.equal(answer.status, Serving.SERVING);
    await assert.rejects(health.check({ service: "ragchat.nope.v1.Nope" }),
      (error) => error.code === 5); // NOT_FOUND
  });

  test("reflection v1 lists the service", async () => {
    const reflection = createClient(ServerReflection, targets.retrieval);
    clients.push(reflection);
    const names = [];
    const requests = [{ messageRequest: { case: "listServices", value: "*" } }];
    for await (const answer of reflection.serverReflectionInfo(requests)) {
      assert.equal(answer.messageResponse.case, "listServicesResponse");
      names.push(...answer.messageResponse.value.service.map((s) => s.name));
    }
    assert.ok(names.includes(RetrievalService.typeName), names.join(", "));
  });

  test("SubmitDocument -> GetJob indexes it, Search finds it, GenerateStream answers",
    async () => {
      const submitted = await ingest.submitDocument({
        filename: "lighthouse.txt", contentType: "text/plain",
        content: new TextEncoder().encode(FACT), tags: ["node-client"],
      });
      assert.ok(submitted.jobId && submitted.documentId);
      const job = await waitIndexed(ingest, submitted.jobId);
      assert.equal(job.status, JobStatus.INDEXED, job.error);
      assert.ok(job.chunkCount >= 1);

      const found = await retrieval.search({
        query: "Who feeds the harbour seals?", topK: 3, mode: SearchMode.HYBRID,
        filter: { documentIds: [submitted.documentId] },
      });
      assert.equal(found.chunks[0]?.documentId, submitted.documentId);
      assert.match(found.chunks[0].text, /Zorblatt/);

      let answer = "";
      let final;
      for await (const part of generation.generateStream({
        question: "Who feeds the harbour seals?", context: found.chunks, maxTokens: 24,
      })) {
        // GenerateStreamResponse is a oneof: text deltas, then one final answer.
        if (part.event.case === "final") final = part.event.value;
        else if (part.event.case === "delta") answer += part.event.value.text;
      }
      assert.ok(final, "the stream ends with a done message");
      assert.ok(final.model);
      assert.ok(final.refused || final.citations.length > 0, "an answer cites its chunk");
      assert.ok(final.refused || answer.length > 0);
      // Every [n] streamed maps onto a final citation through `renumbered`.
      for (const [, n] of answer.matchAll(/\[(\d+)\]/g)) {
        const to = final.renumbered[Number(n)];
        assert.ok(to === undefined || (to >= 1 && to <= final.citations.length));
      }
    });

  test("a bad request is INVALID_ARGUMENT with the service's message", async () => {
    await assert.rejects(retrieval.search({ query: "" }), (error) => {
      assert.equal(error.code, 3);
      assert.ok(error.details.length > 0);
      return true;
    });
  });

  test("a call without a tenant is UNAUTHENTICATED (TENANT_MISSING)", async () => {
    const anonymous = createClient(RetrievalService, targets.retrieval);
    clients.push(anonymous);
    await assert.rejects(anonymous.search({ query: "seals" }), (error) => {
      assert.equal(error.code, 16);
      assert.match(error.details, /tenant/);
      return true;
    });
  });
});
