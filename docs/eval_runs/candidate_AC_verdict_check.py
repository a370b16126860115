"""AC's seed-25 rule (decisions.md, "Candidate AC"): nuisance-pool lower bound >= 2.43.0's and
all-five pooled TPR@1e-3 >= 2.43.0's. Exit 0 when both hold."""
import json
import sys

report = json.load(open(sys.argv[1]))
nuisance = report["sets"]["nuisance_pooled"]["gaps"]
pooled = report["sets"]["pooled"]["tpr"]
lower_ok = nuisance["AC"]["lower_95"] >= nuisance["B_2.43.0"]["lower_95"]
tpr_ok = pooled["AC"] >= pooled["B_2.43.0"]
print(f"nuisance lower: AC {nuisance['AC']['lower_95']:+.4f} vs 2.43.0 {nuisance['B_2.43.0']['lower_95']:+.4f} -> {lower_ok}")
print(f"pooled TPR: AC {pooled['AC']:.4f} vs 2.43.0 {pooled['B_2.43.0']:.4f} (ensemble {pooled['ensemble']:.4f}) -> {tpr_ok}")
sys.exit(0 if lower_ok and tpr_ok else 1)
