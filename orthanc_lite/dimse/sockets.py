"""Socket options of every association, inbound and outbound (its own module so that the SCP handlers and the
SCU modules share it without importing each other)."""

from __future__ import annotations

import logging
import socket
from typing import Any

from pynetdicom.events import Event

logger = logging.getLogger(__name__)


def set_nodelay(event: Event) -> None:
    """EVT_CONN_OPEN: disable Nagle (without it a C-STORE round trip waits for the delayed ACK)."""
    try:
        assoc: Any = event.assoc
        sock = assoc.dul.socket.socket
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        logger.debug("Cannot set TCP_NODELAY", exc_info=True)
