"""The smallest honest device-unlock integration.

Open a session, check, act on the decision and its reasons, and lock out after repeated spoofs
so that retrying cannot wear the check down. Run it on the virtual SR300:

    python examples/unlock.py --source print_flat --seed 5
    python examples/unlock.py --source live --seed 7
"""
from __future__ import annotations

import argparse
import sys
import time

from sdk import Decision, Reason
from sdk.errors import LivenessError
from sdk.session import LivenessSession

MAX_SPOOFS = 3  # spoof decisions in a row before lock-out
LOCKOUT_S = 30.0
MAX_ATTEMPTS = 5

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


def unlock(source: object) -> bool:
    spoofs = 0
    try:
        with LivenessSession(source=source) as session:
            for attempt in range(1, MAX_ATTEMPTS + 1):
                result = session.check(timeout_s=5.0)
                if result.decision is Decision.LIVE:
                    print(f"unlocked (score {result.score:.3f} >= {result.threshold:.3f}, model {result.model_version})")
                    return True
                if result.decision is Decision.SPOOF:
                    spoofs += 1
                    print(f"attempt {attempt}: rejected as a presentation attack ({', '.join(r.value for r in result.reasons)})")
                    if spoofs >= MAX_SPOOFS:
                        print(f"locked out for {LOCKOUT_S:.0f} s after {spoofs} rejected attempts")
                        return False
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
