"""On-device speech recognition: Whisper tiny.en as int8 ONNX graphs (runner) and the factory that builds them."""
