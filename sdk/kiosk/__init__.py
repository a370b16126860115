"""The kiosk: a local web app a person stands in front of (`sr300-liveness kiosk`).

    state = KioskState(...)                       # what the pages show
    KioskRunner(state, bundle, source).start()    # checks back to back in a thread
    KioskServer(create_app(state)).serve_forever()

Flask comes with the `kiosk` extra; importing this package does not import it.
"""
from __future__ import annotations

from sdk.kiosk.hints import hints_for
from sdk.kiosk.state import KioskState

__all__ = ["KioskState", "hints_for"]
