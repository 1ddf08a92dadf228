"""Delayed retries of transient failures: a copy waits in a TTL queue, then returns to the hub.

FastStream 0.7 has no delayed retry and RabbitMQ 3.10 no delayed-message plugin, so the hub owns
it: attempt N goes to `<prefix>.hub.retry.N`, whose TTL is the N-th delay and whose dead-letter
route leads back to the hub's inbound queue. The original routing key and the attempt number
travel in headers.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel

from contracts import envelope as env
from hub.messaging.edge import Delivery
from hub.messaging.topology import HubNames

H_ATTEMPT = "x-signhub-attempt"
# The broker checks user_id against the publishing connection, so the original travels in a header.
H_USER_ID = "x-signhub-user-id"


class RetryScheduler:
    def __init__(self, channel: AbstractChannel, hub: HubNames, delays_s: list[float]) -> None:
        self._channel = channel
        self._hub = hub
        self.delays_s = delays_s

    def can_retry(self, d: Delivery) -> bool:
        return d.attempt < len(self.delays_s)

    async def schedule(self, d: Delivery) -> None:
        """Publishes the delivery's next attempt (confirmed) to its retry queue."""
        headers = dict(d.headers)
        headers[env.H_ROUTING_KEY] = d.routing_key
        headers[H_ATTEMPT] = d.attempt + 1
        if d.user_id is not None:
            headers[H_USER_ID] = d.user_id
        message = aio_pika.Message(
            d.body,
            message_id=d.message_id,
            correlation_id=d.correlation_id,
            type=d.msg_type,
            content_type=d.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers,
        )
        queue = self._hub.retry_queue(d.attempt + 1)
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True)
