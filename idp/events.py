"""Signals between feature packages, so no package imports a sibling.

Each is sent as ``signal.send(sender, subject="student:42")``; receivers take
``(sender, subject)``.

- ``person_deprovisioned``: the person left or was deactivated in the LMS, and
  :func:`idp.revocation.revoke_person` has already ended what the bridge held for them (in the
  transaction that recorded it, for every process). Sent after that commit, in the process that
  committed, for listeners that want to react; never the way to revoke anything.
- ``person_changed``: the person's LMS data changed; caches of this process drop their entries
  (other processes hear it through :func:`idp.revocation.announce_change`).
- ``inactive_login_attempt``: someone tried to sign in (password or launch link) as a person the
  LMS says is inactive; provisioning deprovisions them at once.
"""

from blinker import Namespace

_signals = Namespace()

person_deprovisioned = _signals.signal("person-deprovisioned")
person_changed = _signals.signal("person-changed")
inactive_login_attempt = _signals.signal("inactive-login-attempt")


def send_after_response(signal, sender, **kwargs) -> None:
    """Send ``signal`` once the response has gone out when called inside a request (in a fresh
    app context), so what listeners do neither delays the answer nor tells the client anything
    (a sign-in attempt as an inactive person must look like any failed one); at once elsewhere.
    """
    from flask import current_app, g, has_request_context

    if not has_request_context():
        signal.send(sender, **kwargs)
        return
    app = current_app._get_current_object()

    def deliver() -> None:
        with app.app_context():
            signal.send(sender, **kwargs)

    g.setdefault("after_response", []).append(deliver)
