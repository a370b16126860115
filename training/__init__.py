"""Training package: MLFA networks, CASIA-SURF / simulator data, folds, pretraining, ensemble, distillation."""
