"""The peers we compare with: Ultralytics YOLO trained on our chips, run over scenes with SAHI."""
