"""OpenTelemetry set-up and helpers, written once for every process.

Production exports OTLP to a collector (the ADOT sidecar forwards to X-Ray);
local runs and tests can write spans as JSON lines so that several processes'
spans can be joined into one trace.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)

from services.common.settings import CommonSettings

logger = logging.getLogger(__name__)

# Custom span attributes: all start with "ragchat." and are defined here only.
ATTR_DOCUMENT_ID = "ragchat.document.id"
ATTR_JOB_ID = "ragchat.job.id"
ATTR_SESSION_ID = "ragchat.session.id"
ATTR_CHUNK_COUNT = "ragchat.chunk.count"
ATTR_TOP_K = "ragchat.retrieval.top_k"
ATTR_MIN_SCORE = "ragchat.retrieval.min_score"
ATTR_RESULT_COUNT = "ragchat.retrieval.result_count"
ATTR_INDEX_GENERATION = "ragchat.index.generation"  # the index generation searched
ATTR_SEARCH_MODE = "ragchat.retrieval.mode"
ATTR_RERANKER = "ragchat.retrieval.reranker"
ATTR_CANDIDATE_COUNT = "ragchat.retrieval.candidate_count"
ATTR_REFUSED = "ragchat.generation.refused"
ATTR_CITATION_COUNT = "ragchat.generation.citation_count"
ATTR_EMBEDDING_BATCH_SIZE = "ragchat.embedding.batch_size"
# Resource attribute: the registered serving configuration in use ("env" when none).
ATTR_CONFIG_VERSION = "ragchat.config.version"


class JsonlSpanExporter(SpanExporter):
    """Appends finished spans, one JSON object per line, to a file shared by processes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:
                continue
            lines.append(
                json.dumps(
                    {
                        "name": span.name,
                        "service": span.resource.attributes.get("service.name", ""),
                        "config_version": span.resource.attributes.get(ATTR_CONFIG_VERSION),
                        "trace_id": format(ctx.trace_id, "032x"),
                        "span_id": format(ctx.span_id, "016x"),
                        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
                        "kind": span.kind.name,
                        "attributes": {k: _jsonable(v) for k, v in (span.attributes or {}).items()},
                    }
                )
            )
        if lines:
            with self._lock, open(self._path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
        return SpanExportResult.SUCCESS


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class SkipOrphanClientSpans(Sampler):
    """Root sampler: drop client spans that belong to no request or job.

    With PostgreSQL and AWS calls instrumented, health probes, queue long-polls and
    sweeps would each start a trace of their own every few seconds; calls made while
    serving a request or a job are children and are kept.
    """

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: trace.SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind == trace.SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "SkipOrphanClientSpans"


def service_resource(service_name: str, settings: CommonSettings) -> Resource:
    """What every span of this process carries: service, environment, serving config."""
    return Resource.create(
        {
            "service.name": service_name,
            "service.namespace": "ragchat",
            "deployment.environment": settings.environment,
            ATTR_CONFIG_VERSION: settings.config_version or "env",
        }
    )


def setup_telemetry(service_name: str, settings: CommonSettings) -> TracerProvider:
    """Install a global tracer provider exporting where the settings say."""
    resource = service_resource(service_name, settings)
    provider = TracerProvider(resource=resource, sampler=ParentBased(root=SkipOrphanClientSpans()))
    exporter = settings.otel_exporter
    if exporter == "none" and os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        exporter = "otlp"
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "jsonl":
        if not settings.otel_jsonl_path:
            raise ValueError("RAGCHAT_OTEL_JSONL_PATH is required with RAGCHAT_OTEL_EXPORTER=jsonl")
        provider.add_span_processor(SimpleSpanProcessor(JsonlSpanExporter(settings.otel_jsonl_path)))
    trace.set_tracer_provider(provider)
    if exporter != "none":
        instrument_clients()
    return provider


def instrument_clients() -> None:
    """Make PostgreSQL (psycopg) and AWS (botocore: S3, SQS) calls spans; idempotent.

    Only libraries the image carries are instrumented (the light image has no boto3).
    """
    if importlib.util.find_spec("botocore") is not None:
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

        instrumentor = BotocoreInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
    if importlib.util.find_spec("psycopg") is not None:
        from services.common import dbtrace

        dbtrace.instrument_psycopg()


def shutdown_telemetry() -> None:
    """Flush pending spans; call once at process exit."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def inject_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """Add the current trace context to SQS MessageAttributes (returns the same dict)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    for key, value in carrier.items():
        attributes[key] = {"DataType": "String", "StringValue": value}
    return attributes


def extract_message_context(attributes: Mapping[str, Any] | None) -> otel_context.Context:
    """The trace context carried in received SQS MessageAttributes."""
    carrier = {
        key: value.get("StringValue", "")
        for key, value in (attributes or {}).items()
        if isinstance(value, Mapping)
    }
    return propagate.extract(carrier)
