"""The intent classifier: training (train.py), the ONNX artifact and its runtime (artifact.py)."""
