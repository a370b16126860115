"""The smallest honest device-unlock integration.

Open a session, check, act on the decision and its reasons. The session itself locks out after
repeated spoofs (SessionConfig.lockout: 3 SPOOF decisions within 60 s lock it for 60 s, answering
UNCERTAIN / LOCKED_OUT without scoring), so retrying cannot wear the check down; the one
SpoofLockout here is shared by every session this program opens. Run it on the virtual SR300:

    python examples/unlock.py --source print_flat --seed 5
    python examples/unlock.py --source live --seed 7
"""
from __future__ import annotations

import argparse
import sys
import time

from sdk import Decision, Reason
from sdk.errors import LivenessError
from sdk.lockout import LockoutConfig, SpoofLockout
from sdk.session import LivenessSession, SessionConfig

MAX_ATTEMPTS = 5
#: One lock-out for the whole program: opening a new session must not reset it.
LOCKOUT = SpoofLockout(LockoutConfig(max_spoofs=3, window_s=60.0, duration_s=60.0))

HINTS = {
    Reason.NO_FACE: "look at the camera",
    Reason.FACE_TOO_FAR: "move closer",
    Reason.FACE_TOO_CLOSE: "move back a little",
    Reason.FACE_OFF_CENTER: "centre your face",
    Reason.FACE_PARTLY_OUT_OF_FRAME: "centre your face",
    Reason.TOO_DARK: "more light, please",
    Reason.OVEREXPOSED: "less light, please",
    Reason.MOTION_BLUR: "hold still",
    Reason.MULTIPLE_FACES: "only one person, please",
}


def unlock(source: object, lockout: SpoofLockout = LOCKOUT, timeout_s: float = 5.0, model: object = None) -> bool:
    try:
        with LivenessSession(source=source, model=model, config=SessionConfig(lockout=lockout.config),
                             lockout=lockout) as session:
            for attempt in range(1, MAX_ATTEMPTS + 1):
                result = session.check(timeout_s=timeout_s)
                if result.decision is Decision.LIVE:
                    print(f"unlocked (score {result.score:.3f} >= {result.threshold:.3f}, model {result.model_version})")
                    return True
                if Reason.LOCKED_OUT in result.reasons:
                    # Enforced by the session: nothing is scored until the lock expires.
                    print(f"attempt {attempt}: {result.message}")
                    return False
                if result.decision is Decision.SPOOF:
                    print(f"attempt {attempt}: rejected as a presentation attack ({', '.join(r.value for r in result.reasons)})"
                          + (f"; {result.message}" if "locked out" in result.message else ""))
                    continue
                # UNCERTAIN: tell the person what to change; never unlock on it.
                hints = [HINTS[r] for r in result.reasons if r in HINTS]
                print(f"attempt {attempt}: no decision ({result.message or ', '.join(r.value for r in result.reasons)})"
                      + (f": {hints[0]}" if hints else ""))
                time.sleep(0.1)
    except LivenessError as error:  # no camera, broken model...: stay locked
        print(f"liveness unavailable, staying locked: {error}")
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=None, help="a .bag file or simulator scenario (default: the first SR300)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    source: object = args.source
    if args.source and not args.source.endswith(".bag"):
        from sdk.capture import SimulatorSource

        source = SimulatorSource(args.source, args.seed)
    return 0 if unlock(source) else 1


if __name__ == "__main__":
    sys.exit(main())
