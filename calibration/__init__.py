"""Calibration package: ISO/IEC 30107-3 metrics, reports and operating-point thresholds (numpy only)."""
