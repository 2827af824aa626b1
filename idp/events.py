"""Signals between feature packages, so no package imports a sibling.

Each is sent as ``signal.send(sender, subject="student:42")``; receivers take
``(sender, subject)``.

- ``person_deprovisioned``: the person left or was deactivated in the LMS; every listener ends
  what it holds for them (login sessions, OIDC tokens, launch links, cached context).
- ``person_changed``: the person's LMS data changed; caches drop their entries.
- ``inactive_login_attempt``: someone tried to sign in (password or launch link) as a person the
  LMS says is inactive; provisioning deprovisions them at once.
"""

from blinker import Namespace

_signals = Namespace()

person_deprovisioned = _signals.signal("person-deprovisioned")
person_changed = _signals.signal("person-changed")
inactive_login_attempt = _signals.signal("inactive-login-attempt")
