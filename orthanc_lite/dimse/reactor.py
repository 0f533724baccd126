"""Low-latency reactors for pynetdicom 3.0 (event-driven instead of 1 ms sleep polling).

pynetdicom's DUL and association threads poll with `time.sleep(0.001)`, which caps one association at
~170 C-STORE/s even with a no-op handler (Orthanc 1.10.1 does ~450/s here). `install()` replaces the
two polling loops with waits that wake at once on socket data, on queued primitives and on decoded
DIMSE messages; every check the originals make is kept, in the same order. The loops follow
pynetdicom's `DULServiceProvider.run_reactor` and `Association._run_reactor` (MIT licence).
Only pynetdicom 3.0.x is patched; on another version `install()` logs and leaves it alone.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any, Final

import pynetdicom
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.fsm import InvalidEventError
from pynetdicom.pdu import A_ABORT_RQ

from . import lean

logger = logging.getLogger(__name__)

# Longest idle wait of the DUL thread: bounds how late it notices a timer expiry or a kill flag.
IDLE_WAIT: Final = 0.005
# Longest wait of the association reactor for a DIMSE message before re-checking release/abort/timeouts
# (the original sleeps this long on every loop).
REACTOR_WAIT: Final = 0.001
# The same for an association of our SCP (dimse/lean.py enabled): every primitive its DUL hands up (release, abort)
# and the DUL's end also wake it, so the wait only bounds how late it sees a timer expiry or a kill.
NOTIFIED_REACTOR_WAIT: Final = 0.05
# How often a parked DUL thread checks its kill flag, and a lender waiting for the park its thread.
PARK_POLL: Final = 0.05

_installed = False
_lock = threading.Lock()


class _WakingQueue(queue.Queue):  # type: ignore[type-arg]
    """A Queue whose put() also wakes the DUL thread blocked in select()."""

    def __init__(self, waker: _Waker) -> None:
        super().__init__()
        self._waker = waker

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._waker.wake()


class _Waker:
    """A socketpair: one byte written wakes a select() on the read end."""

    def __init__(self) -> None:
        self.r, self.w = socket.socketpair()
        self.r.setblocking(False)
        self.w.setblocking(False)
        self.closed = False

    def wake(self) -> None:
        if self.closed:
            return
        try:
            self.w.send(b"\0")
        except OSError:  # full (already awake) or closed
            pass

    def drain(self) -> None:
        try:
            while self.r.recv(4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.closed = True
        self.r.close()
        self.w.close()


class _NotifyingQueue(queue.Queue):  # type: ignore[type-arg]
    """The DUL's to_user_queue: a put() also wakes the association loop waiting for a DIMSE message."""

    def __init__(self, messages: queue.Queue) -> None:  # type: ignore[type-arg]
        super().__init__()
        self._messages = messages

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        _notify(self._messages)


def _notify(messages: queue.Queue) -> None:  # type: ignore[type-arg]
    with messages.not_empty:
        messages.not_empty.notify_all()


class _WakingCheckpoint(threading.Event):
    """The association's `_reactor_checkpoint`: clearing it (a thread asking the reactor to pause so that it
    can send and read its own messages) also wakes the reactor waiting for a DIMSE message, so that the
    pause handshake takes microseconds instead of up to REACTOR_WAIT."""

    def __init__(self, messages: queue.Queue) -> None:  # type: ignore[type-arg]
        super().__init__()
        self._messages = messages

    def clear(self) -> None:
        super().clear()
        with self._messages.not_empty:
            self._messages.not_empty.notify_all()


_original_assoc_init = Association.__init__


def _assoc_init(self: Association, ae: Any, mode: str) -> None:
    _original_assoc_init(self, ae, mode)
    checkpoint = _WakingCheckpoint(self.dimse.msg_queue)
    if self._reactor_checkpoint.is_set():
        checkpoint.set()
    self._reactor_checkpoint = checkpoint
    # No other thread knows this association yet: swapping the queue here is race-free.
    self.dul.to_user_queue = _NotifyingQueue(self.dimse.msg_queue)


_original_dul_init = DULServiceProvider.__init__


def _dul_init(self: DULServiceProvider, assoc: Association) -> None:
    _original_dul_init(self, assoc)
    self._ol_lend = None  # type: ignore[attr-defined]  # a SocketLend asking the thread to park (lend_socket)
    waker = _Waker()
    self._ol_waker = waker  # type: ignore[attr-defined]
    # No other thread knows this DUL yet: swapping the queues here is race-free.
    self.to_provider_queue = _WakingQueue(waker)
    self.event_queue = _WakingQueue(waker)


def _dul_kill(self: DULServiceProvider) -> None:
    self._kill_thread = True
    waker = getattr(self, "_ol_waker", None)
    if waker is not None:
        waker.wake()


def _dul_wait(self: DULServiceProvider, timeout: float) -> None:
    """Block until the peer sent data, a primitive/event was queued, or `timeout` passed."""
    waker: _Waker = self._ol_waker  # type: ignore[attr-defined]
    fds: list[Any] = [waker.r]
    sock = self.socket.socket if self.socket is not None else None
    if sock is not None and self.socket._is_connected:  # type: ignore[union-attr]
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return
        fds.append(sock)
    try:
        select.select(fds, [], [], timeout)
    except (OSError, ValueError):  # the socket was closed under us: let the loop see it
        return
    waker.drain()


def _dul_run_reactor(self: DULServiceProvider) -> None:
    """pynetdicom's DUL loop, with the idle sleep replaced by `_dul_wait`."""
    self._idle_timer.start()
    sleep = False
    try:
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
                sleep = True

            if sleep:
                self._ol_wait(IDLE_WAIT)  # type: ignore[attr-defined]

            if self._kill_thread:
                break

            if self.artim_timer.expired:
                self.event_queue.put("Evt18")

            try:
                if self._process_recv_primitive():
                    pass
                elif _transport_event(self):
                    self._idle_timer.restart()
            except Exception as exc:  # noqa: BLE001 -
                _abort(self, exc)
                return

            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                sleep = True
                lend = self._ol_lend  # type: ignore[attr-defined]
                if lend is not None and self.to_provider_queue.empty():
                    lend.park(self)  # idle: nothing half-sent or half-read; the socket is the lender's
                    sleep = False
                continue

            try:
                self.state_machine.do_action(event)
            except InvalidEventError as exc:
                # e.g. a local primitive racing an abort in Sta13: the original ends the DUL thread with a
                # traceback; end it quietly (the association reactor then sees it dead and cleans up).
                logger.info("Ending the DUL thread on an invalid event: %s", exc)
                self._kill_thread = True
                break
            except Exception as exc:  # noqa: BLE001 - e.g. a C-STORE command set without its SOP instance
                # UID (pynetdicom's chunked decoding raises): the original ends the thread and leaves the
                # peer waiting for the network timeout; abort the association instead.
                _abort(self, exc)
                return
            sleep = False
    finally:
        receiver = lean.receiver(self.assoc)
        if receiver is not None:
            receiver.drop()
        self._ol_waker.close()  # type: ignore[attr-defined]
        _notify(self.assoc.dimse.msg_queue)  # the association loop checks dul.is_alive() at once


def _transport_event(self: DULServiceProvider) -> bool:
    """`_is_transport_event`, with the PDUs of an association in data transfer read by its lean receiver
    (dimse/lean.py), which serves C-STORE requests itself and hands everything else to the state machine."""
    receiver = lean.receiver(self.assoc)
    if receiver is None:
        return self._is_transport_event()
    if self.state_machine.current_state != "Sta6":
        receiver.drop()
        return self._is_transport_event()
    if self.socket is not None and self.socket.ready:
        receiver.read_pdu(self)
        return True
    return False


def _abort(self: DULServiceProvider, exc: Exception) -> None:
    """As pynetdicom's DUL.run() on an error: log, send an A-ABORT, mark the association dead."""
    pynetdicom.dul.LOGGER.error("Exception in DUL.run(), aborting association")
    pynetdicom.dul.LOGGER.exception(exc)
    abort_pdu = A_ABORT_RQ()
    abort_pdu.source = 0x02
    abort_pdu.reason_diagnostic = 0x00
    if self.socket is not None:
        self.socket.send(abort_pdu.encode())
    self.assoc.is_aborted = True
    self.assoc.is_established = False
    self.assoc._kill = True
    self._kill_thread = True


def _assoc_run_reactor(self: Association) -> None:
    """pynetdicom's association loop; waits on the DIMSE message queue instead of sleeping first.

    An acceptor may carry `_ol_gate` (a semaphore set by dimse/handlers.py): the loop holds one slot while
    it serves the association, so at most DicomThreadsCount associations are served at once.
    """
    gate = getattr(self, "_ol_gate", None)
    if gate is not None:
        while not gate.acquire(timeout=0.05):
            if self._kill or not self.dul.is_alive():
                self.kill()
                return
    idle: threading.Event | None = getattr(self, "_ol_idle", None)
    if idle is not None:
        idle.set()  # the lean receiver (dimse/lean.py) may serve C-STOREs from now on
    try:
        _assoc_loop(self)
    finally:
        if idle is not None:
            idle.clear()
        if gate is not None:
            gate.release()


def _assoc_loop(self: Association) -> None:
    self._is_paused = False
    while not self._kill:
        # The pause handshake comes first, as in the original: a thread that paused us (to send and
        # read its own messages) waits for _is_paused before sending, so we never take its answer.
        self._is_paused = True
        self._reactor_checkpoint.wait()
        self._is_paused = False
        # A thread that cleared the checkpoint may have read the stale _is_paused = True set above and
        # already sent its request: then its answer is not ours to take. (In that case the checkpoint is
        # cleared by now; a thread clearing it later sees _is_paused False and waits for the next loop.)
        if not self._reactor_checkpoint.is_set():
            continue

        context_id, msg = _next_message(self)
        if msg:
            try:
                self._serve_request(msg, context_id)
            finally:
                idle = getattr(self, "_ol_idle", None)
                if idle is not None and not self._kill:
                    idle.set()

        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            pynetdicom.association.LOGGER.info("Association Released")
            self.is_released = True
            self.is_established = False
            evt.trigger(self, evt.EVT_RELEASED, {})
            self.kill()
            return

        if self.acse.is_aborted():
            log_msg = "Association Aborted"
            if self.acse.is_aborted("a-p-abort"):
                log_msg += " (A-P-ABORT)"
            pynetdicom.association.LOGGER.info(log_msg)
            self.dul.receive_pdu(wait=False)
            self.is_aborted = True
            self.is_established = False
            evt.trigger(self, evt.EVT_ABORTED, {})
            self.kill()
            return

        if not self.dul.is_alive():
            self.kill()
            return

        if self.dul.idle_timer_expired():
            pynetdicom.association.LOGGER.error("Network timeout reached")
            if self.network_timeout_response == "A-RELEASE":
                self._is_paused = True
                self._reactor_checkpoint.wait()
                self.release()
                self._is_paused = False
            else:
                self.abort()
            self.kill()
            return


def _next_message(self: Association) -> tuple[Any, Any]:
    """The next DIMSE message, waiting up to REACTOR_WAIT; none once a pause was asked for (its answer
    belongs to the thread that paused us). Waking on the queue's own condition lets a pause request
    (_WakingCheckpoint.clear) interrupt the wait."""
    messages = self.dimse.msg_queue
    checkpoint = self._reactor_checkpoint
    wait = NOTIFIED_REACTOR_WAIT if lean.receiver(self) is not None else REACTOR_WAIT
    with messages.not_empty:
        if not messages._qsize() and checkpoint.is_set():  # type: ignore[attr-defined]
            messages.not_empty.wait(wait)
        if not checkpoint.is_set() or not messages._qsize():  # type: ignore[attr-defined]
            return None, None
        item = messages._get()  # type: ignore[attr-defined]
        # Under the queue's lock: the lean receiver (dimse/lean.py) sees either the message queued or us busy.
        idle = getattr(self, "_ol_idle", None)
        if idle is not None:
            idle.clear()
        messages.not_full.notify()
        return item  # type: ignore[no-any-return]


class SocketLend:
    """The DUL thread's socket, lent to another thread (`lend_socket`): the DUL thread parks, idle, until the
    lender gives the socket back. `cancel()` (any thread) flags it and shuts the socket's read side down, so
    that a pending receive ends at once (a sender polls the flag); the socket stays writable for the A-ABORT
    that the DUL thread sends once it has it back."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.cancelled = False
        self._parked = threading.Event()
        self._resume = threading.Event()

    def park(self, dul: DULServiceProvider) -> None:
        """Run by the DUL thread: wait until the socket is given back (or the thread is killed)."""
        self._parked.set()
        while not self._resume.wait(PARK_POLL):
            if dul._kill_thread:
                return

    def cancel(self) -> None:
        self.cancelled = True
        try:
            self.socket.shutdown(socket.SHUT_RD)
        except OSError:  # already closed
            pass


@contextlib.contextmanager
def lend_socket(assoc: Association, timeout: float | None) -> Iterator[SocketLend | None]:
    """The association's plain TCP socket for the calling thread while the DUL thread is parked; None when
    it cannot be lent (no event-driven reactor, TLS, the DUL thread gone, or not parked within `timeout`).
    The socket is handed back blocking, as pynetdicom uses it, and the network idle timer restarted."""
    dul = assoc.dul
    wrapper = dul.socket
    sock = wrapper.socket if wrapper is not None else None
    if (not hasattr(dul, "_ol_lend") or sock is None or isinstance(sock, ssl.SSLSocket)
            or not dul.is_alive() or not assoc.is_established):
        yield None
        return
    lend = SocketLend(sock)
    dul._ol_lend = lend  # type: ignore[attr-defined]
    dul._ol_waker.wake()  # type: ignore[attr-defined]
    deadline = time.monotonic() + (timeout or 60.0)
    while not lend._parked.wait(PARK_POLL):
        if not dul.is_alive() or time.monotonic() > deadline:
            dul._ol_lend = None  # type: ignore[attr-defined]
            lend._resume.set()  # in case it parks right now
            yield None
            return
    saved_timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        yield lend
    finally:
        try:
            sock.settimeout(saved_timeout)
        except OSError:
            pass
        dul._ol_lend = None  # type: ignore[attr-defined]
        dul._idle_timer.restart()
        lend._resume.set()


def install() -> bool:
    """Patch pynetdicom once per process; returns whether the fast reactors are active."""
    global _installed
    with _lock:
        if _installed:
            return True
        if not pynetdicom.__version__.startswith("3.0."):
            logger.warning("pynetdicom %s: keeping its polling reactors (only 3.0.x is patched)",
                           pynetdicom.__version__)
            return False
        Association.__init__ = _assoc_init  # type: ignore[method-assign]
        DULServiceProvider.__init__ = _dul_init  # type: ignore[method-assign]
        DULServiceProvider.kill_dul = _dul_kill  # type: ignore[method-assign]
        DULServiceProvider._ol_wait = _dul_wait  # type: ignore[attr-defined]
        DULServiceProvider.run_reactor = _dul_run_reactor  # type: ignore[method-assign]
        Association._run_reactor = _assoc_run_reactor  # type: ignore[method-assign]
        _installed = True
        return True
