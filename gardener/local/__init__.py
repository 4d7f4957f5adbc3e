"""The bundled local model: llama-cpp-python's OpenAI-compatible server over a GGUF
file, started, watched and stopped as a child process.

Takes a model file; gives an endpoint URL.
"""
