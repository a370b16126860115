#!/bin/bash
# Descriptive (decisions.md, "Candidate AB"): held-out seeds pooled per family, from cached scores.
#   bash heldout_gap_seeds_pooled.sh 20 21 22 23      -> heldout_gap_seeds20-23_pooled.*
#   bash heldout_gap_seeds_pooled.sh 20 21 22 23 24   -> heldout_gap_seeds20-24_pooled.*
#   bash heldout_gap_seeds_pooled.sh 20 21 22 23 24 25 -> heldout_gap_seeds20-25_pooled.*
# The cache folder links every seed's runs/hoNN/scores/*.npz; 2.38.0's bundle is taken from git (353c21f).
set -u
cd /work
seeds=("$@"); tag="${seeds[0]}-${seeds[-1]}"; out=runs/pool${seeds[0]}${seeds[-1]}
# Scores already made for a seed (its own verdict run) are linked, not recomputed.
mkdir -p $out/scores
for s in "${seeds[@]}"; do
  for f in runs/ho$s/scores/*.npz; do [ -e "$f" ] && ln -sf /work/$f $out/scores/; done
done
ev=()
for fam in yaw_gt20 glasses_or_beard far_gt08 sunlight mask_3d; do
  for s in "${seeds[@]}"; do ev+=(--eval $fam=runs/ho$s/$fam:test_list.txt); done
done
nice -n 10 python /work/main/tools/heldout_gap.py --ensemble runs/s4/ensembleH \
    --model S_2.38.0_bundle=runs/pool2023/bundle_2.38.0/sdk/bundles/mlfa_student_sim \
    --model Z=runs/recovered/runZ/model.pt --model AA_2.43.0=runs/recovered/runAA/model.pt "${ev[@]}" \
    --pool pooled=yaw_gt20,glasses_or_beard,far_gt08,sunlight,mask_3d \
    --pool nuisance_pooled=yaw_gt20,glasses_or_beard,far_gt08,sunlight \
    --cache $out/scores --threads 1 --json $out/heldout_gap_seeds$tag.json --markdown $out/heldout_gap_seeds$tag.md
echo "heldout_gap rc=$? $(date -u +%H:%M:%S)"
