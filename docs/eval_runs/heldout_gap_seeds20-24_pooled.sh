#!/bin/bash
# Descriptive (decisions.md, "Candidate AB"): seeds 20-24 pooled per family, from cached scores only.
set -u
cd /work
ev=()
for fam in yaw_gt20 glasses_or_beard far_gt08 sunlight mask_3d; do
  for s in 20 21 22 23 24; do ev+=(--eval $fam=runs/ho$s/$fam:test_list.txt); done
done
nice -n 10 python /work/main/tools/heldout_gap.py --ensemble runs/s4/ensembleH \
    --model S_2.38.0_bundle=runs/pool2023/bundle_2.38.0/sdk/bundles/mlfa_student_sim \
    --model Z=runs/recovered/runZ/model.pt --model AA_2.43.0=runs/recovered/runAA/model.pt "${ev[@]}" \
    --pool pooled=yaw_gt20,glasses_or_beard,far_gt08,sunlight,mask_3d \
    --pool nuisance_pooled=yaw_gt20,glasses_or_beard,far_gt08,sunlight \
    --cache runs/pool2024/scores --threads 2 --json runs/pool2024/heldout_gap_seeds20-24.json \
    --markdown runs/pool2024/heldout_gap_seeds20-24.md
echo "heldout_gap rc=$? $(date -u +%H:%M:%S)"
