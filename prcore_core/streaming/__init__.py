"""Streaming, one module per concern: validation and wire shapes (:mod:`.events`), the group-commit journal
(:mod:`.journal`), the prescriber threads (:mod:`.prescribing`), activation (:mod:`.activation`), the broker and the
readers' cursor (:mod:`.delivery`), the simulation (:mod:`.simulation`), and the thin :class:`StreamingService`
that composes them (:mod:`.service`)."""

from prcore_core.streaming.delivery import Broker, Delivery
from prcore_core.streaming.events import (
    DEFAULT_INTERVAL,
    STREAM_MODES,
    parse_complete_indicator,
    prcore_prescriptions,
    renamed_attributes,
    stream_event,
    stream_target,
    validate_event,
)
from prcore_core.streaming.prescribing import MAX_BATCH, STOP, ActiveProject
from prcore_core.streaming.service import StreamingService
from prcore_core.streaming.simulation import Simulation

#: The old name of :data:`~prcore_core.streaming.prescribing.STOP` (tests end a prescriber thread with it).
_STOP = STOP

__all__ = [
    "DEFAULT_INTERVAL",
    "MAX_BATCH",
    "STOP",
    "STREAM_MODES",
    "ActiveProject",
    "Broker",
    "Delivery",
    "Simulation",
    "StreamingService",
    "parse_complete_indicator",
    "prcore_prescriptions",
    "renamed_attributes",
    "stream_event",
    "stream_target",
    "validate_event",
]
