"""The 24-member MLFA ensemble (4 initialisations x 3 attack folds x 2 seeds) trained on Ray.

    plan    -> training.ensemble.plan     (member table, fold lists, member configs)
    train   -> training.ensemble.runner   (one Ray task per member; resumable)
    status  -> training.ensemble.status   (read from the members' run folders)
    score   -> training.ensemble.score    (every member with flip TTA, and their mean)
    teacher -> training.ensemble.teacher  (the members as one torch module: mean probability)
"""
from training.ensemble.plan import FOLDS, INIT_ORDER, SEEDS, Member, load_members, make_plan

__all__ = ["FOLDS", "INIT_ORDER", "SEEDS", "Member", "load_members", "make_plan"]
