// Compiled (never run) by `make lint` (tsc -p clients/node): the generated declarations
// and createClient's types give TypeScript users checked requests and typed replies.
import { createClient } from "./src/client.js";
import { GenerationService } from "./gen/ragchat/generation/v1/generation_pb.js";
import { IngestService, JobStatus } from "./gen/ragchat/ingest/v1/ingest_pb.js";
import { RetrievalService, SearchMode } from "./gen/ragchat/retrieval/v1/retrieval_pb.js";

export async function example(): Promise<string> {
  const ingest = createClient(IngestService, "127.0.0.1:50053", { tenant: "default" });
  const job = await ingest.getJob({ jobId: "j" }, { deadlineMs: 1000 });
  const indexed: boolean = job.status === JobStatus.INDEXED;

  const retrieval = createClient(RetrievalService, "127.0.0.1:50051", { tenant: "default" });
  const { chunks } = await retrieval.search({ query: "q", topK: 3, mode: SearchMode.HYBRID });
  // @ts-expect-error a misspelled field does not compile
  await retrieval.search({ qery: "q" });
  // @ts-expect-error nor does a wrong type
  await retrieval.search({ query: 3 });

  const generation = createClient(GenerationService, "127.0.0.1:50052", { tenant: "default" });
  let text = "";
  for await (const part of generation.generateStream({ question: "q", context: chunks })) {
    if (part.event.case === "delta") text += part.event.value.text;
  }
  generation.close();
  return `${indexed} ${text}`;
}
