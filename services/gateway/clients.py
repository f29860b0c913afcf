"""gRPC stubs for the four services, sharing the common channel set-up."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2_grpc
from ragchat.generation.v1 import generation_pb2_grpc
from ragchat.ingest.v1 import ingest_pb2_grpc
from ragchat.memory.v1 import memory_pb2_grpc
from ragchat.retrieval.v1 import retrieval_pb2_grpc

from services.common.grpc_client import open_channel
from services.gateway.config import GatewaySettings


@dataclass
class ServiceClients:
    retrieval: retrieval_pb2_grpc.RetrievalServiceStub
    generation: generation_pb2_grpc.GenerationServiceStub
    ingest: ingest_pb2_grpc.IngestServiceStub
    memory: memory_pb2_grpc.MemoryServiceStub
    health: dict[str, health_pb2_grpc.HealthStub]
    channels: list[grpc.aio.Channel]

    @classmethod
    def connect(cls, settings: GatewaySettings) -> ServiceClients:
        targets = {
            "retrieval": settings.retrieval_target,
            "generation": settings.generation_target,
            "ingest": settings.ingest_target,
            "memory": settings.memory_target,
        }
        channels = {name: open_channel(target) for name, target in targets.items()}
        health_channels = dict(channels)
        if settings.ingest_worker_target:
            health_channels["ingest-worker"] = open_channel(settings.ingest_worker_target)
        return cls(
            retrieval=retrieval_pb2_grpc.RetrievalServiceStub(channels["retrieval"]),
            generation=generation_pb2_grpc.GenerationServiceStub(channels["generation"]),
            ingest=ingest_pb2_grpc.IngestServiceStub(channels["ingest"]),
            memory=memory_pb2_grpc.MemoryServiceStub(channels["memory"]),
            health={name: health_pb2_grpc.HealthStub(ch) for name, ch in health_channels.items()},
            channels=list(health_channels.values()),
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
