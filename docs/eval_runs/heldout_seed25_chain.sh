#!/bin/bash
# Seed 25 (decisions.md, "Candidate AC"): ensemble H and 2.43.0 scored family by family as renders land
# (cached), then AC's verdict over all five with flip TTA. Rerun to resume (scores are cached).
set -u
cd /work
B=/work/runs/shipAA/bundle_2.43.0
FAMS=(yaw_gt20 glasses_or_beard far_gt08 sunlight mask_3d)
until grep -q "AC rc=" runs/recovered/runAC.log; do sleep 30; done
grep -q "AC rc=0" runs/recovered/runAC.log || { echo "AC failed"; exit 2; }
echo "AC trained $(date -u +%H:%M:%S)"
for fam in "${FAMS[@]}"; do
  until [ -f runs/ho25/$fam/test_list.txt ]; do sleep 30; done
  python /work/main/tools/heldout_gap.py --ensemble runs/s4/ensembleH --model B_2.43.0=$B --model AC=runs/recovered/runAC/model.pt \
      --eval $fam=runs/ho25/$fam:test_list.txt --cache runs/ho25/scores --threads 2 \
      --json runs/ho25/part_$fam.json --markdown runs/ho25/part_$fam.md || { echo "score $fam failed"; exit 3; }
  echo "scored $fam $(date -u +%H:%M:%S)"
done
ev=(); for fam in "${FAMS[@]}"; do ev+=(--eval $fam=runs/ho25/$fam:test_list.txt); done
python /work/main/tools/heldout_gap.py --ensemble runs/s4/ensembleH --model B_2.43.0=$B --model AC=runs/recovered/runAC/model.pt \
    "${ev[@]}" --pool pooled=yaw_gt20,glasses_or_beard,far_gt08,sunlight,mask_3d \
    --pool nuisance_pooled=yaw_gt20,glasses_or_beard,far_gt08,sunlight \
    --cache runs/ho25/scores --threads 2 --json runs/ho25/heldout_gap_seed25_AC.json --markdown runs/ho25/heldout_gap_seed25_AC.md
echo "AC verdict rc=$? $(date -u +%H:%M:%S)"
