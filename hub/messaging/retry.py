"""Delayed retries of transient failures: a copy waits in a TTL queue, then returns to the hub.

FastStream 0.7 has no delayed retry and RabbitMQ 3.10 no delayed-message plugin, so the hub owns
it: attempt N goes to `<prefix>.hub.retry.N`, whose TTL is the N-th delay and whose dead-letter
route leads back to the hub's inbound queue. The original routing key, user_id and the attempt
number travel in headers under the hub's seal (hub.messaging.seal): a party that copies them onto
its own message gains nothing.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel

from hub.messaging.edge import Delivery
from hub.messaging.seal import Seal, Vouched
from hub.messaging.topology import HubNames


class RetryScheduler:
    def __init__(self, channel: AbstractChannel, hub: HubNames, delays_s: list[float], seal: Seal,
                 publish_timeout_s: float = 10.0) -> None:  # fmt: skip
        self.publish_timeout_s = publish_timeout_s
        self._channel = channel
        self._hub = hub
        self.delays_s = delays_s
        self._seal = seal

    def can_retry(self, d: Delivery) -> bool:
        return d.attempt < len(self.delays_s)

    async def schedule(self, d: Delivery) -> None:
        """Publishes the delivery's next attempt (confirmed) to its retry queue."""
        vouched = Vouched(d.routing_key, d.user_id, d.message_id, d.attempt + 1, d.replay_by)
        headers = dict(d.headers) | self._seal.headers(vouched, d.body)
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
        # Bounded: the intake awaits this inside a group, and a confirm that never came held the group.
        await self._channel.default_exchange.publish(message, routing_key=queue, mandatory=True,
                                                     timeout=self.publish_timeout_s)  # fmt: skip
