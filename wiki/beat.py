"""One beat at a time: a Celery beat scheduler that sends the schedule only while it holds
a lease in Redis.

Kubernetes runs one beat (replicas 1, strategy Recreate), but a rollout, a node that stops
answering or an operator's `kubectl scale` can start a second one. Every beat asks Redis for
the lease (SET NX PX) and renews it while it runs; only the holder sends due tasks. Another
beat stands by, asking again every third of the lease, and takes over once the holder stops
renewing: at once when the holder shuts down cleanly (it gives the lease back), after at most
BEAT_LOCK_SECONDS when it died. A standing-by beat counts every entry as just run, so on
taking over it does not send at once what the old leader already sent: a run falling due
in the moments of a takeover may be skipped, never sent twice (each periodic task here is
redone by its next run: the outbox sweep every minute, the daily clean-ups the next day).

Configured from the Celery app: beat_lock_seconds (CELERY_BEAT_LOCK_SECONDS, from
BEAT_LOCK_SECONDS), and the broker's Redis holds the lease.
"""

import os
import socket
import uuid

import redis
from celery.beat import PersistentScheduler
from celery.utils.log import get_logger

# Celery's own logger family, which `celery beat` configures (--loglevel).
logger = get_logger(__name__)

LEASE_KEY = "mlwiki:beat:leader"
# Extends the lease only if it is still ours (another beat may hold it after an expiry).
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
# Gives the lease back only if it is ours.
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class LeaseScheduler(PersistentScheduler):
    """Celery's default scheduler (the schedule file), sending only while holding the lease."""

    def __init__(self, *args, **kwargs):
        self.leading = None  # not asked yet: the first answer is logged either way
        super().__init__(*args, **kwargs)
        conf = self.app.conf
        self.lease_seconds = float(conf.get("beat_lock_seconds") or 30)
        # Renewed three times a lease: one renewal lost to a slow Redis does not lose it.
        self.renew_every = self.lease_seconds / 3
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self.redis = redis.Redis.from_url(
            conf.broker_url,
            socket_timeout=self.renew_every,
            socket_connect_timeout=self.renew_every,
        )

    def _hold_lease(self):
        """Whether this beat holds the lease now (renewed, or just taken)."""
        ms = int(self.lease_seconds * 1000)
        try:
            held = bool(self.redis.eval(RENEW, 1, LEASE_KEY, self.token, ms)) or bool(
                self.redis.set(LEASE_KEY, self.token, nx=True, px=ms)
            )
        except redis.RedisError as error:
            # Without Redis nothing can be sent anyway (it is the broker); the lease may
            # run out meanwhile, so this beat must win it again before sending.
            logger.warning("beat: Redis did not answer for the lease: %s", error)
            held = False
        if held != self.leading:
            logger.warning(
                "beat: %s",
                "holds the lease: sending the schedule"
                if held
                else f"standing by: another beat holds the lease (BEAT_LOCK_SECONDS="
                f"{self.lease_seconds:g})",
            )
            self.leading = held
        return held

    def _stand_by(self):
        """Count every entry as just run, so a takeover sends only what falls due after it."""
        for entry in self.schedule.values():
            entry.last_run_at = entry.default_now()
        self._heap = None  # rebuilt from the entries at the next tick

    def tick(self, *args, **kwargs):
        if not self._hold_lease():
            self._stand_by()
            return self.renew_every
        return min(super().tick(*args, **kwargs), self.renew_every)

    def close(self):
        try:
            super().close()
        finally:
            if self.leading:
                try:
                    self.redis.eval(RELEASE, 1, LEASE_KEY, self.token)
                except redis.RedisError:
                    logger.warning("beat: the lease could not be given back; it runs out")
            self.redis.close()
